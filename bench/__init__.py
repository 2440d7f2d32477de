"""The benchmark: bench/run.py and the modules it runs with."""
