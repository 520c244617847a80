"""Benchmarks of the project (``bench/bench.py``) and the probes each runs in a fresh interpreter."""
