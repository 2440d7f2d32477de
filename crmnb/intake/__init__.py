"""Where a table comes from and how it becomes a canonical table: sources (CSV, Excel, SQL), mappings and
presets, the canonical schema and its checks, the data inventory, and cleaning.
"""


def __getattr__(name: str):
    """Import a module of this package on first use: ``intake.load`` needs no import of its own."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
