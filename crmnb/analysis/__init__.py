"""The analyses of the method, each a set of pure functions (DataFrame in, DataFrame out): metrics, funnel,
segments, drivers, lifetime value, churn, marketing and attribution, forecast, before/after, receipts,
typical cases, diagnosis.
"""


def __getattr__(name: str):
    """Import a module of this package on first use: ``analysis.funnel`` needs no import of its own."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
