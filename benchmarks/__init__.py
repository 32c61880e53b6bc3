"""Benchmarks of the curriculum service (run from the repository root, e.g.
``python -m benchmarks.service_load --smoke``)."""
