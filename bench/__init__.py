"""Benchmarks: micro benchmarks of the core and scenario runs on real daemons."""
