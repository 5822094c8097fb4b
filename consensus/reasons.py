"""Named reasons for refusing an input; each one is a metric label."""

from enum import StrEnum


class Reason(StrEnum):
    MALFORMED = "malformed"
    NOT_MEMBER = "not_member"
    SENDER_MISMATCH = "sender_mismatch"
    BAD_SIGNATURE = "bad_signature"
    WRONG_CHAIN = "wrong_chain"  # signed for another network (its chain tag differs)
    OLD_VIEW = "old_view"
    FUTURE_VIEW = "future_view"
    IN_VIEW_CHANGE = "in_view_change"
    OUTSIDE_WINDOW = "outside_window"
    STALE = "stale"
    DUPLICATE = "duplicate"
    CONFLICTING = "conflicting"
    NOT_PRIMARY = "not_primary"
    BAD_PROPOSAL = "bad_proposal"
    CONFLICTS_OWN_VOTE = "conflicts_own_vote"
    BAD_VIEW_CHANGE = "bad_view_change"
    BAD_NEW_VIEW = "bad_new_view"
    BAD_BLOCK = "bad_block"
    BUFFER_FULL = "buffer_full"
    BAD_REQUEST = "bad_request"
    UNEXPECTED = "unexpected"
    # client requests
    REPLAY = "replay"
    DUPLICATE_REQUEST = "duplicate_request"
    MEMPOOL_FULL = "mempool_full"
    INVALID_TX = "invalid_tx"
