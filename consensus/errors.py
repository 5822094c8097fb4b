"""Errors that are our fault, not a peer's."""


class InvariantBroken(RuntimeError):
    """Our own state contradicts a quorum: the node must halt, loudly."""
