"""Benchmarks: each script prints its figures and its baseline's, measured in one run."""
