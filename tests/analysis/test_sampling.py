"""GB/T 2828.1 (ISO 2859-1) single sampling: tables against published values, the
switching rules, and a draw anyone can re-derive."""

from __future__ import annotations

import hashlib

import pytest

from analysis.sampling import Plan, SamplingError, Switching, after_lot, code_letter, draw, plan

# Table 1 (sample size code letters), as published (ANSI/ASQ Z1.4 = ISO 2859-1 Table 1)
CODE_LETTERS = [
    (5, "S-1", "A"), (60, "S-1", "B"), (1000, "S-1", "C"), (200_000, "S-1", "D"),
    (20, "S-3", "B"), (100, "S-3", "C"), (600_000, "S-3", "H"), (3000, "S-4", "G"),
    (30, "I", "C"), (400, "I", "F"), (2000, "I", "H"), (600_000, "I", "N"),
    (12, "II", "B"), (300, "II", "H"), (2000, "II", "K"), (20_000, "II", "M"),
    (8, "III", "B"), (1200, "III", "K"), (3201, "III", "M"), (600_000, "III", "R"),
]  # fmt: skip

# Tables 2-A (normal) and 2-B (tightened) at general level II, as published in MIL-STD-105E
# derived tables (lot size, AQL, severity) -> (n, Ac, Re); arrows followed
PLANS = [
    (2000, "1.0", "normal", (125, 3, 4)),  # the and the standard's example
    (5, "6.5", "normal", (2, 0, 1)), (5, "4.0", "normal", (3, 0, 1)),  # A: arrow down to B
    (12, "15", "normal", (3, 1, 2)), (20, "10", "normal", (5, 1, 2)),
    (40, "15", "normal", (8, 3, 4)), (60, "10", "normal", (13, 3, 4)),
    (100, "2.5", "normal", (20, 1, 2)), (100, "10", "normal", (20, 5, 6)),
    (100, "1.5", "normal", (32, 1, 2)),  # F at 1.5: arrow down to G
    (200, "15", "normal", (32, 10, 11)), (400, "2.5", "normal", (50, 3, 4)),
    (400, "15", "normal", (50, 14, 15)), (1000, "2.5", "normal", (80, 5, 6)),
    (1000, "0.65", "normal", (80, 1, 2)), (2000, "10", "normal", (125, 21, 22)),
    (2000, "15", "normal", (80, 21, 22)),  # K at 15: arrow up to J
    (5000, "0.65", "normal", (200, 3, 4)), (20_000, "1.5", "normal", (315, 10, 11)),
    (600_000, "1.0", "normal", (1250, 21, 22)),
    (2000, "0.65", "tightened", (125, 1, 2)), (2000, "2.5", "tightened", (125, 5, 6)),
    (2000, "6.5", "tightened", (125, 12, 13)), (2000, "10", "tightened", (125, 18, 19)),
    (200, "0.65", "tightened", (32, 0, 1)), (200, "15", "tightened", (32, 8, 9)),
    (1000, "1.0", "tightened", (80, 1, 2)), (1000, "15", "tightened", (80, 18, 19)),
]  # fmt: skip


@pytest.mark.parametrize(("lot", "level", "letter"), CODE_LETTERS)
def test_code_letters_are_the_published_ones(lot: int, level: str, letter: str) -> None:
    assert code_letter(lot, level) == letter


@pytest.mark.parametrize(("lot", "aql", "severity", "expected"), PLANS)
def test_single_sampling_plans_are_the_published_ones(
    lot: int, aql: str, severity: str, expected: tuple[int, int, int]
) -> None:
    p = plan(lot, "II", aql, severity)
    assert (p.sample_size, p.accept, p.reject) == expected


def test_a_sample_never_exceeds_the_lot_and_bad_input_is_named() -> None:
    small = plan(2, "III", "0.010")  # B's plan is far below: 1250 > 2
    assert small.sample_size == 2 and small.hundred_percent
    bad = [(("x", "II", "1.0"), "lot size"), ((100, "IV", "1.0"), "level"),
           ((100, "II", "1"), "AQL"), ((100, "II", "1.0", "strict"), "severity")]  # fmt: skip
    for args, word in bad:
        with pytest.raises(SamplingError, match=word):
            plan(*args)  # type: ignore[arg-type]


def lots(state: Switching, p: Plan, counts: list[int]) -> Switching:
    for c in counts:
        state = after_lot(state, p, c)
    return state


def test_switching_normal_tightened_normal_and_discontinuation() -> None:
    p = plan(2000, "II", "1.0")  # Ac 3, Re 4
    assert lots(Switching(), p, [4, 0, 0, 4]).severity == "tightened"  # 2 of 4
    assert lots(Switching(), p, [4, 0, 0, 0, 0, 4]).severity == "normal"  # 2 of 6
    t = plan(2000, "II", "1.0", "tightened")
    back = lots(Switching("tightened"), t, [0] * 5)
    assert back.severity == "normal"
    stopped = lots(Switching("tightened"), t, [3, 0, 3, 0, 3, 3, 0, 0, 0, 3])
    assert stopped.discontinued


def test_the_switching_score_leads_to_reduced_and_a_failure_back_to_normal() -> None:
    p = plan(2000, "II", "1.0")  # Ac 3: +3 when at most 2 nonconforming (Ac one step tighter)
    state = lots(Switching(), p, [2] * 9)
    assert state.severity == "normal" and state.score == 27
    assert after_lot(state, p, 3).score == 0  # accepted, but not with Ac 2
    reduced = after_lot(state, p, 1)
    assert reduced.severity == "reduced"
    r = plan(2000, "II", "1.0", "reduced")  # n 50, Ac 1, Re 4
    assert r.decide(2) == "accepted_revert"
    assert after_lot(reduced, r, 2).severity == "normal"
    assert after_lot(reduced, r, 0).severity == "reduced"
    zero = plan(100, "II", "0.65")  # Ac 0: +2 only for a lot without nonconforming items
    assert lots(Switching(), zero, [0] * 14).score == 28
    assert lots(Switching(), zero, [0] * 15).severity == "reduced"


def test_the_draw_is_rederived_from_the_block_hash_alone() -> None:
    barcodes = [f"12300010081000{i:08d}" for i in range(500)]
    block_hash = hashlib.sha256(b"block 1234").digest()
    chosen = draw(barcodes, 50, block_hash)
    # the documented algorithm, written again here: Fisher-Yates over the sorted codes
    pool = sorted(barcodes)
    for k in range(50):
        bound, attempt = len(pool) - k, 0
        while True:
            data = block_hash + k.to_bytes(8, "big") + attempt.to_bytes(4, "big")
            value = int.from_bytes(hashlib.sha256(data).digest(), "big")
            if value < (1 << 256) - (1 << 256) % bound:
                break
            attempt += 1
        j = k + value % bound
        pool[k], pool[j] = pool[j], pool[k]
    assert chosen == pool[:50] and len(set(chosen)) == 50
    assert draw(barcodes, 50, hashlib.sha256(b"block 1235").digest()) != chosen
    assert sorted(draw(barcodes[:30], 50, block_hash)) == sorted(barcodes[:30])  # at most all


# MIL-STD-105E Tables II-A, II-B and II-C (ANSI/ASQ Z1.4; their single sampling master
# tables are ISO 2859-1's), as the AQLSchemes R package transcribes them, arrows
# followed: LETTER/AQL=n:Ac/Re. They cover the tables' edges (letter A's arrows, letter
# R's, tightened S, the largest acceptance numbers of the AQL 150 column). The whole
# normal and tightened tables (416 cells each) agree with that transcription; the reduced
# one does in 385 of 416, not in its corner of letters A-B at AQL 25 and above and of AQL
# 1000 (docs/metering.md).
MIL_STD_105E = {
    "normal": """
        A/10=5:1/2 E/150=13:30/31 R/0.015=800:0/1 K/1.0=125:3/4 B/1000=3:44/45
        R/4.0=315:21/22 B/40=3:3/4 N/25=50:21/22 D/10=8:2/3 D/0.040=315:0/1
        H/0.015=800:0/1 D/15=8:3/4 M/40=32:21/22 Q/65=20:21/22 J/4.0=80:7/8
        C/6.5=8:1/2 G/0.40=32:0/1 Q/0.65=1250:14/15 K/0.010=1250:0/1 F/6.5=20:3/4
    """,
    "tightened": """
        A/10=8:1/2 A/6.5=3:0/1 E/150=13:27/28 R/0.015=1250:0/1 R/0.025=3150:1/2
        K/1.0=125:2/3 G/15=32:8/9 E/6.5=13:1/2 R/15=80:18/19 E/0.25=80:0/1
        G/0.10=200:0/1 J/4.0=80:5/6 H/25=50:18/19 C/0.065=315:0/1 L/0.25=315:1/2
        Q/0.010=2000:0/1 Q/100=13:18/19 N/150=13:27/28 J/1.5=80:2/3 B/0.065=315:0/1
    """,
    "reduced": """
        E/150=5:14/17 R/0.015=315:0/1 K/1.0=50:1/4 C/6.5=3:0/2 D/4.0=5:0/2
        C/0.65=8:0/1 P/4.0=125:10/13 F/15=8:3/6 J/0.65=32:0/2 K/2.5=50:3/6
        J/0.015=315:0/1 E/1.5=3:0/1 F/6.5=8:1/4 L/15=32:10/13 M/0.10=200:0/2
        K/0.025=200:0/1 D/6.5=3:0/2 M/0.015=315:0/1 M/0.040=125:0/1 L/0.10=50:0/1
    """,
}


@pytest.mark.parametrize("severity", list(MIL_STD_105E))
def test_each_table_matches_mil_std_105e_at_its_edges_and_at_random(severity: str) -> None:
    from analysis.sampling import plan_at

    for cell in MIL_STD_105E[severity].split():
        where, _, expected = cell.partition("=")
        letter, aql = where.split("/", 1)
        p = plan_at(letter, aql, severity, 10**9)
        assert f"{p.sample_size}:{p.accept}/{p.reject}" == expected, (severity, where)
