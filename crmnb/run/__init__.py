"""Running cases: the kernel, step execution and its errors, run records, batch, the index page, the
new-case scaffold, the notebook output filter.
"""


def __getattr__(name: str):
    """Import a module of this package on first use: ``run.batch`` needs no import of its own."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
