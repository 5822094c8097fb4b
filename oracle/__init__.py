"""What devices run: the oracle SDK, device simulators, offline receipt checks."""
