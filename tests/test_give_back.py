"""Between steps the shared kernel gives back what the step's DuckDB databases held, and they open again."""

from crmnb.analysis import metric_engine
from crmnb.run import kernel


def test_the_metric_database_is_closed_between_steps_and_opens_again_for_the_next_query():
    assert metric_engine.run_sql("SELECT 41 + $x AS n", {"x": 1}).column("n").to_pylist() == [42]
    assert metric_engine._ENGINE  # the step's queries share one database
    kernel.give_back_memory()
    assert not metric_engine._ENGINE
    assert metric_engine.run_sql("SELECT 2 * $x AS n", {"x": 21}).column("n").to_pylist() == [42]
