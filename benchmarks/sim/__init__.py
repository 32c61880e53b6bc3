"""The simulated learners of ``benchmarks/simulated.py``: model, regimes, statistics."""
