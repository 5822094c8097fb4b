"""JSON schemas of the API's parameters and answers (OpenAPI 3.1 uses JSON Schema 2020-12).

The router validates nothing by schema: each handler checks its own input; these
schemas say what it accepts and answers, and the schemathesis run in the tests holds
every live answer to them.
"""

from __future__ import annotations

from typing import Any

from node.routes import Param

__all__ = ["Param"]  # re-exported: routes name their parameters through this module

Schema = dict[str, Any]
HEX = "^([0-9a-fA-F]{2})*$"
HASH_PATTERN = "^[0-9a-fA-F]{64}$"
INT: Schema = {"type": "integer", "minimum": 0}
STR: Schema = {"type": "string"}
HEX_STR: Schema = {"type": "string", "pattern": HEX}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


TX_HASH = Param("hash", {"type": "string", "pattern": HASH_PATTERN}, "path", "hex SHA-256/SM3")
PUBLIC_KEY = Param("public_key", {"type": "string", "pattern": "^[0-9a-fA-F]+$"}, "path")
ID_PARAM = {"type": "string", "minLength": 1, "maxLength": 200}
HEIGHT = Param("height", {"type": "string", "pattern": "^(latest|[0-9]{1,18})$"}, "path")


def wait_param(max_wait_s: int) -> Param:
    return Param("wait_s", {"type": "number", "minimum": 0, "maximum": max_wait_s}, "query",
                 "long-poll up to this many seconds for the commit")  # fmt: skip


DISPENSER_STATUS = Param(
    "status", {"type": "string", "enum": ["suspect", "cleared", "undecided"]}, "query"
)
EVENT_QUERY = (
    Param("name", {"type": "string", "maxLength": 200}, "query", "only events of this name"),
    Param("from_height", {"type": "integer", "minimum": 0, "maximum": 10**18}, "query"),
    Param(
        "after",
        {"type": "integer", "minimum": 0, "maximum": 10**18},
        "query",
        "only events after the one with this id (paging)",
    ),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "query"),
)

TX_PENDING = obj({"tx_hash": STR, "status": {"const": "pending"}})
TX_DONE = obj(
    {
        "tx_hash": STR,
        "status": {"enum": ["committed", "rejected"]},
        "height": INT,
        "index": INT,
        "reason": {"type": ["string", "null"]},
    }
)
TX_STATUS: Schema = {"oneOf": [TX_PENDING, TX_DONE]}
BATCH_RESULT = obj(
    {"tx_hash": STR, "status": {"enum": ["pending", "refused", "committed", "rejected"]}},
    {
        "http_status": INT,
        "error": STR,
        "height": INT,
        "index": INT,
        "reason": {"type": ["string", "null"]},
    },
)
BATCH = obj({"results": {"type": "array", "items": BATCH_RESULT}})
RECEIPT = obj(
    {
        "chain_id": STR,
        "chain_hash": HEX_STR,
        "tx_hash": STR,
        "height": INT,
        "index": INT,
        "receipt": HEX_STR,
    }
)
CLIENT = obj({"public_key": STR, "committed_high_seq": INT})
DEVICE = obj(
    {
        "device_id": STR,
        "status": {"enum": ["registered", "active", "revoked"]},
        "kind": STR,
        "public_key": HEX_STR,
        "manufacturer": HEX_STR,
        "model": STR,
        "accuracy_class": {},
        "registered_at": INT,
        "active_from": NULLABLE_INT,
        "revoked_from": NULLABLE_INT,
        "endorsers": {"type": "array", "items": HEX_STR},
        "last_seq": INT,
        "readings": INT,
        "history": {"type": "array", "items": {"type": "object"}},
    }
)
DISPENSER = obj(
    {
        "dispenser_id": STR,
        "status": {"enum": ["suspect", "cleared", "undecided"]},
        "estimate_ppm": {"type": "integer"},
        "interval_ppm": {"type": "array", "items": {"type": "integer"}},
        "readings": INT,
        "vehicles": INT,
        "echoing_vehicles": INT,
        "flagged_at_readings": NULLABLE_INT,
    },
    {"station_id": {"type": ["string", "null"]}, "changed_at_readings": NULLABLE_INT},
)
DISPENSERS = obj(
    {"dispensers": {"type": "array", "items": DISPENSER}}, {"tolerance_ppm": NULLABLE_INT}
)
VEHICLE = obj(
    {
        "vehicle_id": STR,
        "suspected_colluder": {"type": "boolean"},
        "votes_withdrawn": {"type": "boolean"},
        "device_status": {"type": ["string", "null"]},
        "readings_by_dispenser": {"type": "object"},
        "echoes_by_dispenser": {"type": "object"},
        "votes_ppm": {"type": "object"},
    }
)
EVENTS = obj(
    {
        "events": {
            "type": "array",
            "items": obj(
                {
                    "id": INT,
                    "height": INT,
                    "name": STR,
                    "data": {},
                    "tx_index": {"type": "integer", "minimum": -1},
                }
            ),  # -1: the block's
        }
    }
)
EVIDENCE = obj(
    {
        "evidence": {
            "type": "array",
            "items": obj({"member": INT, "kind": STR, "first": HEX_STR, "second": HEX_STR}),
        }
    }
)
BLOCK = obj(
    {
        "height": INT,
        "hash": HEX_STR,
        "prev_hash": HEX_STR,
        "timestamp_ms": INT,
        "proposer": INT,
        "tx_root": HEX_STR,
        "tx_count": INT,
        "state_height": INT,
        "proposal_state_root": HEX_STR,
        "state_root": HEX_STR,
        "txs": {"type": "array", "items": HEX_STR},
        "refused": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}},
        "certificate": obj({"view": INT, "votes": {"type": "array"}}),
        "encoded": HEX_STR,
    }
)
STATUS = obj(
    {
        "member": INT,
        "name": STR,
        "view": INT,
        "primary": INT,
        "in_view_change": {"type": "boolean"},
        "height": INT,
        "block_hash": HEX_STR,
        "stable_checkpoint": INT,
        "state_root": HEX_STR,
        "peers_connected": INT,
        "mempool_size": INT,
        "chain_id": STR,
        "chain_hash": HEX_STR,
        "suite": STR,
        "epoch": INT,
        "members": {"type": "array", "items": INT},
        "is_member": {"type": "boolean"},
    }
)
EPOCH = obj({"epoch": INT, "start_after": INT, "members": {"type": "array", "items": INT}})
ROSTER_ENTRY = obj({"index": INT, "name": STR, "role": STR, "suite": STR, "public_key": HEX_STR,
                    "peer_id": STR, "address": STR, "api": STR})  # fmt: skip
CHANGE = obj({"height": INT, "tx_hash": HEX_STR, "epoch": INT, "start_after": INT})
MEMBERS = obj(
    {
        "epoch": INT,
        "start_after": INT,
        "members": {"type": "array", "items": INT},
        "next": {"oneOf": [EPOCH, {"type": "null"}]},
        "roster": {"type": "array", "items": ROSTER_ENTRY},
        "history": {"type": "array", "items": CHANGE},
    }
)
OK = obj({"ok": {"type": "boolean"}})
OPERATOR_CONFIG = obj({"config": {"type": "object"}, "member": INT})
FAULTS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "drop_to": {"type": "array", "items": INT},
        "loss_pct": {"type": "integer", "minimum": 0, "maximum": 100},
        "delay_ms": {"type": "integer", "minimum": 0, "maximum": 60_000},
        "jitter_ms": {"type": "integer", "minimum": 0, "maximum": 60_000},
        "seed": {"type": "integer"},
    },
}
