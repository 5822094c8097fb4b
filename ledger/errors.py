"""The one error every decoder raises for bytes it cannot accept."""


class InvalidEncoding(ValueError):
    """Bytes or a decoded structure that do not form a valid object.

    Raised for a peer's bad input: callers drop and count it, they never crash.
    """
