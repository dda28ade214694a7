"""Benchmarks of the platform against bare baselines: ``make bench`` / ``python -m bench``."""
