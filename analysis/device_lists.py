"""The device registry's authority and manufacturer lists, changed by membership changes.

The genesis sets the lists (`devices.authorities`, `devices.manufacturers`); a
membership change (ledger.membership) may carry `authority_add`, `authority_remove`,
`manufacturer_add` and `manufacturer_remove` operations, approved like any change by a
quorum of the members. They take effect with the change's epoch, after its boundary
block. The registry only observes changes the membership contract accepted, so it cannot
refuse one: an operation that changes nothing is skipped, and so is the removal of an
authority that would leave fewer than `endorsements_required` (no device could become
active); each skip is an event naming the key and the reason.

State: rules/lists = {current: LISTS, next: {after: B, value: LISTS} | None}
       (analysis.state.in_force), LISTS = {authorities: [key], manufacturers: [key]}
"""

from __future__ import annotations

from typing import Any

from analysis.state import ContractState, in_force, schedule
from ledger.membership import LIST_OPS, boundary, parse_change

LISTS_KEY = "rules/lists"


def current_lists(
    state: ContractState, authorities: frozenset[bytes], manufacturers: frozenset[bytes],
    height: int,
) -> tuple[frozenset[bytes], frozenset[bytes]]:  # fmt: skip
    """The lists that govern block `height` (the genesis ones before any change)."""
    genesis = {"authorities": sorted(authorities), "manufacturers": sorted(manufacturers)}
    lists = in_force(state, LISTS_KEY, genesis, height)
    return frozenset(lists["authorities"]), frozenset(lists["manufacturers"])


def observe_change(
    state: ContractState,
    payload: bytes,
    height: int,
    genesis_lists: tuple[frozenset[bytes], frozenset[bytes]],
    endorsements_required: int,
    interval: int,
    window: int,
) -> tuple[tuple[str, Any], ...]:
    """Schedule an accepted change's list operations; the events say what happened."""
    ops = [op for op in parse_change(payload).ops if op[0] in LIST_OPS]
    if not ops:
        return ()
    authorities, manufacturers = (set(k) for k in current_lists(state, *genesis_lists, height))
    events: list[tuple[str, Any]] = []
    for name, key in ops:
        target = authorities if name.startswith("authority") else manufacturers
        adding = name.endswith("_add")
        problem = _problem(name, key, target, adding, len(authorities), endorsements_required)
        if problem:
            events.append(("registry_change_skipped", {"op": name, "key": key.hex(),
                                                       "reason": problem}))  # fmt: skip
        elif adding:
            target.add(key)
        else:
            target.discard(key)
    after = boundary(height, interval, window)
    genesis = {"authorities": sorted(genesis_lists[0]), "manufacturers": sorted(genesis_lists[1])}
    value = {"authorities": sorted(authorities), "manufacturers": sorted(manufacturers)}
    schedule(state, LISTS_KEY, genesis, height, value, after)
    events.append(("registry_lists_scheduled", {"after": after, "authorities": len(authorities),
                                                "manufacturers": len(manufacturers)}))  # fmt: skip
    return tuple(events)


def _problem(
    name: str, key: bytes, target: set[bytes], adding: bool, n_authorities: int, k: int
) -> str | None:
    if adding and key in target:
        return "already listed"
    if not adding and key not in target:
        return "not listed"
    if not adding and name.startswith("authority") and n_authorities - 1 < k:
        return f"would leave fewer than endorsements_required = {k} authorities"
    return None
