"""Membership change drafts: operations checked when drafted, as the ledger will."""

from __future__ import annotations

import pytest

from ledger.genesis import GenesisError
from node.members_cli import _ops_of, propose


def test_a_rules_draft_is_normalised_and_a_bad_one_refused_by_name() -> None:
    draft = propose(1, [["verification_rules", {"required_items": ["VOLT_Meter_CONC"]}]])
    (op,) = _ops_of(draft)
    assert op[0] == "verification_rules"
    assert op[1]["required_items"] == {"01": ["VOLT_Meter_CONC"], "03": ["VOLT_Meter_CONC"]}
    with pytest.raises(GenesisError, match=r"rules\.ranges\.X"):
        propose(1, [["verification_rules", {"ranges": {"X": [0, 1]}}]])
    with pytest.raises(GenesisError, match="expected hex"):
        propose(1, [["remove", "not-hex"]])
    with pytest.raises(GenesisError, match="expected"):
        propose(1, [["promote", "ab"]])
