"""Running cases: the kernel, step execution and its errors, run records, batch and its progress, the index page, the
new-case scaffold, the notebook output filter.
"""

MODULES = ("batch", "index", "kernel", "preflight", "progress", "records", "scaffold", "steps", "strip")


def __getattr__(name: str):
    """Import a module of this package on first use: ``run.batch`` needs no import of its own."""
    import importlib

    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
