"""The analyses of the method, each a set of pure functions (DataFrame in, DataFrame out): metrics, funnel,
segments, drivers, lifetime value, churn, marketing and attribution, forecast, before/after, receipts,
typical cases, diagnosis.
"""

MODULES = (
    "attribution",
    "bgnbd",
    "cases",
    "churn",
    "churn_model",
    "clv",
    "compare",
    "diagnosis",
    "drivers",
    "events",
    "forecast",
    "funnel",
    "marketing",
    "metrics",
    "receipts",
    "scope",
    "segments",
    "watch",
)


def __getattr__(name: str):
    """Import a module of this package on first use: ``analysis.funnel`` needs no import of its own."""
    import importlib

    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
