"""The Validity contract's rules (Appendix A.2), as ledger configuration.

The genesis sets them (`contracts.verification.required_items`, `ranges`); a membership
change approved by a quorum of the members may replace them (`verification_rules`
operation), and they apply with that change's epoch, after its boundary block, like every
other membership change. Each record is checked against every rule and gets its result
set (each rule valid or not, with its field); it enters the state only if every rule
holds, and the first failing one is its answer.

Rules: the items its meter's wiring requires (the item set of a meter type), each item's
value within its range, an overall conclusion consistent with the items, a basic error
found 合格 only with every load point's error inside the meter's accuracy class
(`ERROR_LIMIT_PPM`), and the date order (a later check of a meter is not dated before its
first verification).

State: rules/validity = {current: RULES, next: {after: B, value: RULES} | None}
       (analysis.state.in_force)
"""

from __future__ import annotations

from typing import Any

from analysis.state import ContractState, in_force, schedule
from ledger.membership import RULES_OP, boundary, parse_change
from ledger.verification import (
    ERROR_LIMIT_PPM,
    ITEMS,
    NOT_QUALIFIED,
    QUALIFIED,
    VerificationRecord,
    parse_rules,
)

BASIC_ERROR = "BASICERR_Meter_CONC"

RULES_KEY = "rules/validity"
Result = tuple[str, str, bool]  # (rule, field, holds)


def current_rules(state: ContractState, genesis: dict[str, Any], height: int) -> dict[str, Any]:
    rules: dict[str, Any] = in_force(state, RULES_KEY, genesis, height)
    return rules


def observe_change(
    state: ContractState, payload: bytes, height: int, genesis: dict[str, Any],
    interval: int, window: int,
) -> tuple[tuple[str, Any], ...]:  # fmt: skip
    """Schedule the rules of an accepted membership change (checked by its contract)."""
    ops = [op for op in parse_change(payload).ops if op[0] == RULES_OP]
    if not ops:
        return ()
    after = boundary(height, interval, window)
    schedule(state, RULES_KEY, genesis, height, parse_rules(ops[-1][1]), after)
    return (("validity_rules_scheduled", {"after": after}),)


def check(rules: dict[str, Any], p: VerificationRecord, asset: dict[str, Any],
          first_date: str | None) -> list[Result]:  # fmt: skip
    """Every rule's result for one record of the meter `asset`."""
    wiring = asset["wiring"]
    codes = {code for code, _, _ in p.items}
    out: list[Result] = [("required_item", ITEMS[code][0], code in codes)
                         for code in rules["required_items"].get(wiring, [])]  # fmt: skip
    for code, _, value in p.items:
        low, high = rules["ranges"].get(code, (0, 10**12))
        out.append(("range", ITEMS[code][0], low <= value <= high))
    for code, conclusion, _ in p.items:
        consistent = conclusion != NOT_QUALIFIED or p.result == NOT_QUALIFIED
        out.append(("result_consistency", ITEMS[code][0], consistent))
    basic_error = next((c for code, c, _ in p.items if code == BASIC_ERROR), None)
    if basic_error == QUALIFIED:  # each load point within the meter's class
        limit = ERROR_LIMIT_PPM[asset["accuracy_class"]]
        out += [("point_consistency", f"points.{name}", -limit <= ppm <= limit)
                for name, ppm in p.points]  # fmt: skip
    if p.record_kind != "first" and first_date is not None:
        out.append(("date_order", "veriDate", p.date >= first_date))
    return out


def held_by_rule(results: list[Result]) -> dict[str, list[str]]:
    """A stored record's result set: the fields each rule checked, rules sorted (only a
    record whose every rule held is stored, so each listed check held)."""
    held: dict[str, list[str]] = {}
    for rule, name, holds in results:
        assert holds, (rule, name)  # the contract stores valid records only
        held.setdefault(rule, []).append(name)
    return dict(sorted(held.items()))
