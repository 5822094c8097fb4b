"""Deterministic analysis contracts applied to committed blocks."""
