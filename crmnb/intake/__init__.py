"""Where a table comes from and how it becomes a canonical table: sources (CSV, Excel, SQL), mappings and
presets, the canonical schema and its checks, the data inventory, and cleaning.
"""

MODULES = ("checks", "cleaning", "inventory", "load", "mappings", "parse", "presets", "read", "schema", "sources")


def __getattr__(name: str):
    """Import a module of this package on first use: ``intake.load`` needs no import of its own."""
    import importlib

    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
