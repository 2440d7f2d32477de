"""What a reader sees: the report, the workbook, charts, tables for display, words in two languages, masking
of personal data, e-mail; the outputs a case run writes.
"""

MODULES = (
    "charts",
    "display",
    "fonts",
    "mail",
    "masking",
    "outputs",
    "report",
    "summary",
    "templates",
    "words",
    "workbook",
)


def __getattr__(name: str):
    """Import a module of this package on first use: ``present.charts`` needs no import of its own."""
    import importlib

    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
