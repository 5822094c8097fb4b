"""GB/T 2828.1-2012 (ISO 2859-1:1999) single sampling by attributes, as data and rules.

The Tianjin specification (seed 002, §5.1 and §6.3.2) has the regulator draw supervision
samples from an arrival batch "according to the national sampling standard". This module
holds what that needs, in integers and strings only (the contracts are deterministic):

- Table 1, the sample size code letter of a lot size at an inspection level (S-1..S-4,
  I, II, III);
- Tables 2-A, 2-B and 2-C, the single sampling plans (n, Ac, Re) for normal, tightened and
  reduced inspection at each AQL, with the arrows followed ("use the first plan below /
  above"); a plan whose sample reaches the lot size means 100 % inspection;
- the switching rules between normal, tightened and reduced inspection (with the 1999
  edition's switching score), and the discontinuation after five lots not accepted
  under tightened inspection;
- a draw of the barcodes to inspect that anyone can re-derive from a seed (the committed
  block's hash).

The master tables are diagonal: along a row, each AQL column one step up moves one step
along the sequence of acceptance numbers, and a row one code letter down does the same,
so each table is its sequence and the column of its first plan per code letter, with the
tables' own exceptions at their edges (letters A, R and S, and the largest acceptance
numbers in letters A-E only). Tests check the result against MIL-STD-105E's published
values, whose single sampling master tables are ISO 2859-1's. Reduced inspection's
acceptance and rejection numbers are those of the ISO 2859-1/MIL-STD-105E Table II-C
form, with a gap: a count between Ac and Re accepts the lot and returns to normal
inspection (docs/metering.md says where this is an interpretation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

LEVELS = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")
LOT_UPPER = (8, 15, 25, 50, 90, 150, 280, 500, 1200, 3200, 10_000, 35_000, 150_000, 500_000)
CODE_LETTERS = {  # Table 1: per level, the letter of each lot size range
    "S-1": "AAAABBBBCCCCDDD",
    "S-2": "AAABBBCCCDDDEEE",
    "S-3": "AABBCCDDEEFFGGH",
    "S-4": "AABCCDEEFGGHJJK",
    "I": "AABCCDEFGHJKLMN",
    "II": "ABCDEFGHJKLMNPQ",
    "III": "BCDEFGHJKLMNPQR",
}
LETTERS = "ABCDEFGHJKLMNPQRS"  # S exists under tightened inspection only
SAMPLE_SIZE = (2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000, 3150)
REDUCED_SIZE = (2, 2, 2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800)
AQLS = ("0.010", "0.015", "0.025", "0.040", "0.065", "0.10", "0.15", "0.25", "0.40", "0.65",
        "1.0", "1.5", "2.5", "4.0", "6.5", "10", "15", "25", "40", "65", "100", "150", "250",
        "400", "650", "1000")  # fmt: skip
UP, DOWN = "up", "down"
Cell = tuple[int, int] | str  # (Ac, Re), or an arrow
NORMAL_SEQUENCE: tuple[Cell, ...] = ((0, 1), UP, DOWN, (1, 2), (2, 3), (3, 4), (5, 6), (7, 8),
                                     (10, 11), (14, 15), (21, 22), (30, 31), (44, 45))  # fmt: skip
TIGHTENED_SEQUENCE: tuple[Cell, ...] = ((0, 1), DOWN, DOWN, (1, 2), (2, 3), (3, 4), (5, 6),
                                        (8, 9), (12, 13), (18, 19), (27, 28), (41, 42))  # fmt: skip
REDUCED_SEQUENCE: tuple[Cell, ...] = ((0, 1), UP, DOWN, (0, 2), (1, 3), (1, 4), (2, 5), (3, 6),
                                      (5, 8), (7, 10), (10, 13), (14, 17), (21, 24))  # fmt: skip
LAST_LARGE_ROW = LETTERS.index("E")  # the largest acceptance numbers exist in rows A-E only
LAST_ROW = LETTERS.index("R")  # of the normal and reduced tables
S_COLUMN = AQLS.index("0.025")  # tightened letter S's one plan, (1, 2)
SEQUENCES = {"normal": (NORMAL_SEQUENCE, 11), "tightened": (TIGHTENED_SEQUENCE, 10),
             "reduced": (REDUCED_SEQUENCE, 11)}  # fmt: skip
SEVERITIES = ("normal", "tightened", "reduced")


class SamplingError(ValueError):
    """A lot size, level, AQL or severity outside the standard; the message says which."""


@dataclass(frozen=True)
class Plan:
    severity: str
    code_letter: str  # the letter the arrows led to
    sample_size: int  # never more than the lot: 100 % inspection then
    accept: int  # Ac: accept the lot with at most this many nonconforming
    reject: int  # Re: reject with at least this many
    hundred_percent: bool

    def decide(self, nonconforming: int) -> str:
        """'accepted', 'not_accepted', or under reduced inspection 'accepted_revert'
        (between Ac and Re: the lot is accepted, normal inspection resumes)."""
        if nonconforming <= self.accept:
            return "accepted"
        if nonconforming >= self.reject:
            return "not_accepted"
        return "accepted_revert"


def code_letter(lot_size: int, level: str) -> str:
    """Table 1."""
    if level not in CODE_LETTERS:
        raise SamplingError(f"inspection level {level!r}: expected one of {LEVELS}")
    if type(lot_size) is not int or lot_size < 2:
        raise SamplingError(f"lot size {lot_size!r}: expected an integer of at least 2")
    index = next((i for i, top in enumerate(LOT_UPPER) if lot_size <= top), len(LOT_UPPER))
    return CODE_LETTERS[level][index]


def plan(lot_size: int, level: str, aql: str, severity: str = "normal") -> Plan:
    """The single sampling plan, arrows followed, for a lot."""
    return plan_at(code_letter(lot_size, level), aql, severity, lot_size)


def plan_at(letter: str, aql: str, severity: str, lot_size: int) -> Plan:
    """The single sampling plan from the cell of a code letter and an AQL, arrows followed."""
    if aql not in AQLS:
        raise SamplingError(f"AQL {aql!r}: expected one of {AQLS}")
    if severity not in SEVERITIES:
        raise SamplingError(f"severity {severity!r}: expected one of {SEVERITIES}")
    row, column = LETTERS.index(letter), AQLS.index(aql)
    for _ in range(len(LETTERS)):
        cell = _cell(severity, row, column)
        if cell == UP:
            row -= 1
        elif cell == DOWN:
            row += 1
        else:
            assert isinstance(cell, tuple)
            n = _sample_sizes(severity)[row]
            return Plan(severity, LETTERS[row], min(n, lot_size), cell[0], cell[1], n >= lot_size)
    raise SamplingError(f"no plan for AQL {aql} at letter {letter}")


def _sample_sizes(severity: str) -> tuple[int, ...]:
    return REDUCED_SIZE if severity == "reduced" else SAMPLE_SIZE


def _cell(severity: str, row: int, column: int) -> Cell:
    """One cell of Table 2-A, 2-B or 2-C."""
    sequence, large_from = SEQUENCES[severity]
    rows = len(SAMPLE_SIZE) if severity == "tightened" else len(REDUCED_SIZE)
    if not 0 <= row < rows:
        raise SamplingError(f"the {severity} table has no plan in the AQL {AQLS[column]} column")
    if row == len(SAMPLE_SIZE) - 1:  # tightened letter S holds a single plan
        return (1, 2) if column == S_COLUMN else UP
    first = 14 - row + (severity == "tightened")  # the column of the row's (0, 1) plan
    step = column - first
    if step < 0 or (row == 0 and severity == "tightened" and step < 3):
        return DOWN  # tightened letter A has no (0, 1) plan: its first is (1, 2)
    if step >= len(sequence) or (step >= large_from and row > LAST_LARGE_ROW):
        return UP
    cell = sequence[step]
    if row == 0 and cell == UP:  # nothing above letter A: its arrow points down
        return DOWN
    if row == LAST_ROW and cell == DOWN and (severity != "tightened" or column != S_COLUMN):
        return UP  # nothing below letter R (tightened: S, in its one column)
    return cell


# ---- switching rules (ISO 2859-1:1999 clause 9) --------------------------------------


@dataclass(frozen=True)
class Switching:
    severity: str = "normal"
    score: int = 0  # the switching score towards reduced inspection
    recent: tuple[bool, ...] = ()  # acceptance of the last lots at this severity, newest last
    not_accepted_tightened: int = 0  # lots not accepted since tightened began
    discontinued: bool = False


def after_lot(s: Switching, p: Plan, nonconforming: int, steady: bool = True) -> Switching:
    """The inspection severity for the next lot once this lot's result is known.

    normal -> tightened: 2 of 5 or fewer consecutive lots not accepted;
    tightened -> normal: 5 consecutive lots accepted;
    tightened -> discontinued: 5 lots not accepted while tightened;
    normal -> reduced: switching score at least 30 (and production steady);
    reduced -> normal: a lot not accepted, accepted between Ac and Re, or production not
    steady. The score adds 2 (Ac 0 or 1: the lot had no nonconforming item) or 3 (Ac 2 or
    more: the lot would have been accepted with Ac one step tighter), else resets to 0."""
    if s.discontinued:
        return s
    outcome = p.decide(nonconforming)
    accepted = outcome != "not_accepted"
    recent = (*s.recent, accepted)[-5:]
    if s.severity == "normal":
        if recent.count(False) >= 2:
            return Switching("tightened")
        score = _score(s.score, p, nonconforming, accepted)
        if score >= 30 and steady:
            return Switching("reduced")
        return replace(s, score=score, recent=recent)
    if s.severity == "tightened":
        failed = s.not_accepted_tightened + (not accepted)
        if failed >= 5:
            return replace(s, discontinued=True, not_accepted_tightened=failed)
        if len(recent) == 5 and all(recent):
            return Switching("normal")
        return replace(s, recent=recent, not_accepted_tightened=failed)
    if outcome != "accepted" or not steady:
        return Switching("normal")
    return replace(s, recent=recent)


def _score(score: int, p: Plan, nonconforming: int, accepted: bool) -> int:
    if not accepted:
        return 0
    if p.accept <= 1:
        return score + 2 if nonconforming == 0 else 0
    return score + 3 if nonconforming <= _one_step_tighter(p.accept) else 0


def _one_step_tighter(ac: int) -> int:
    values = [cell[0] for cell in NORMAL_SEQUENCE if isinstance(cell, tuple)]
    return values[max(0, values.index(ac) - 1)] if ac in values else ac - 1


# ---- the draw ---------------------------------------------------------------------------


def draw(barcodes: list[str], count: int, seed: bytes) -> list[str]:
    """`count` distinct barcodes (at most all of them), in draw order, re-derivable from
    `seed` by anyone: a Fisher-Yates shuffle of the sorted barcodes whose k-th swap index
    comes from SHA-256(seed ‖ k), with rejection so that every index is equally likely."""
    pool = sorted(set(barcodes))
    chosen = min(count, len(pool))
    for k in range(chosen):
        j = k + _uniform(seed, k, len(pool) - k)
        pool[k], pool[j] = pool[j], pool[k]
    return pool[:chosen]


def _uniform(seed: bytes, k: int, bound: int) -> int:
    limit = (1 << 256) - (1 << 256) % bound
    attempt = 0
    while True:
        digest = hashlib.sha256(seed + k.to_bytes(8, "big") + attempt.to_bytes(4, "big"))
        value = int.from_bytes(digest.digest(), "big")
        if value < limit:
            return value % bound
        attempt += 1
