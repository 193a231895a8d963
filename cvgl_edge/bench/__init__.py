"""Benchmark support: machine descriptions recorded beside every result."""
