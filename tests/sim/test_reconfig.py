"""Membership changes in the simulator: joins, removals, replacements, under faults."""

from __future__ import annotations

from collections import Counter

import pytest

from consensus.events import Receive, Rejected
from consensus.messages import Prepare, encode_message
from consensus.reasons import Reason
from sim.plan import SimParams
from sim.reconfig import final_members
from sim.world import World


@pytest.mark.parametrize(("n", "byzantine"), [(4, 1), (7, 2)])
def test_seeded_runs_with_membership_changes_stay_safe_and_live(n: int, byzantine: int) -> None:
    kinds: Counter[str] = Counter()
    for seed in range(12):
        world = World(SimParams(n=n, byzantine=byzantine, seed=seed, reconfig=True))
        result = world.run()
        assert result.safety_ok and result.liveness_ok, f"seed {seed}: {result.detail}"
        kinds.update(k for k in result.faults if k.startswith("reconfig_"))
    assert {"reconfig_add", "reconfig_remove", "reconfig_replace"} <= set(kinds), kinds


def test_a_removed_member_is_refused_in_the_new_epoch() -> None:
    seed = next(s for s in range(50) if any(
        c.kind in ("remove", "replace") for c in World(SimParams(seed=s, reconfig=True)).changes
    ))  # fmt: skip
    world = World(SimParams(seed=seed, reconfig=True))
    assert world.run().liveness_ok
    gone = next(c.target for c in world.changes if c.kind in ("remove", "replace"))
    member = min(final_members(4, world.changes) - set(world.plan.byzantine))
    replica = world.replicas[member]
    assert replica is not None and not replica.cfg.is_member(gone)
    seq = replica.stable_seq + 1
    vote = Prepare(replica.view, seq, b"\x11" * 32, gone)
    signed = Prepare(
        vote.view, seq, vote.digest, gone, world.signers[gone].sign(vote.signing_bytes())
    )
    actions = replica.handle(Receive(gone, encode_message(signed)))
    assert [a.reason for a in actions if isinstance(a, Rejected)] == [Reason.NOT_MEMBER]
    assert seq not in replica.slots


def test_a_reconfiguration_run_replays_exactly() -> None:
    first = World(SimParams(seed=5, reconfig=True)).run().as_dict()
    again = World(SimParams(seed=5, reconfig=True)).run().as_dict()
    assert first == again
