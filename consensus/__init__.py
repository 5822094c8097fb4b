"""PBFT as a pure state machine: `Replica.handle(event) -> list[Action]`.

Nothing in this package performs I/O, reads a clock or draws randomness
(tests/consensus/test_purity.py checks the imports).
"""
