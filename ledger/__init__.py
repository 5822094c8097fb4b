"""Shared data model: canonical encoding, hashes, signature suites, tx and block types."""
