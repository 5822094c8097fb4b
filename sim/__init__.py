"""Deterministic, seeded simulation of n in-process replicas with faults."""
