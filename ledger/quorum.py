"""Quorum arithmetic for n = 3f + 1 replicas: the only place it is written down.

With n replicas of which at most f are Byzantine, a quorum must be large enough
that (a) any two quorums intersect in at least one honest replica, so two
conflicting values can never both gather a quorum, and (b) a quorum can form
from honest replicas alone, so f silent replicas cannot block progress.
(b) needs q <= n - f; (a) needs 2q - n >= f + 1. With n = 3f + 1 both hold for
q = 2f + 1 = n - f, and f + 1 replicas always include an honest one.

Any n >= 1 is allowed, with f = floor((n - 1) / 3): q = n - f satisfies both for every
n (2(n - f) - n = n - 2f >= f + 1 since n >= 3f + 1). Below 4 replicas f = 0: every
member must vote, and one member down stops the network (the Tianjin specification's
provincial chains have 3 nodes); the node warns at start.
"""

from __future__ import annotations


def max_faulty(n: int) -> int:
    """Largest f with n >= 3f + 1."""
    if n < 1:
        raise ValueError(f"need at least 1 replica, got n={n}")
    return (n - 1) // 3


def quorum_size(n: int) -> int:
    """Votes that make a certificate (prepare, commit, checkpoint, view change): n - f."""
    return n - max_faulty(n)


def weak_quorum_size(n: int) -> int:
    """Votes that include at least one honest replica: f + 1."""
    return max_faulty(n) + 1


def primary_of(view: int, n: int) -> int:
    """Round-robin primary of `view` (PBFT section 4.1: p = v mod |R|)."""
    return view % n
