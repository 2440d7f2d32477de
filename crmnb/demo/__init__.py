"""The demo CRM data: a company with two departments, a planted story, the faults real exports have, and
its answer key."""

from crmnb.demo.generator import generate, to_sqlite

__all__ = ["generate", "to_sqlite"]
