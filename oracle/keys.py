"""Signing keys for oracles: device key files, and the signing half of a node key file."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ledger.crypto import KeyPair, get_suite


def load_signing_key(path: Path) -> tuple[str, KeyPair]:
    """(suite, key) from a device key file {"suite", "seed"} or a node key file
    {"suite", "signing_seed", ...}; ValueError naming the file otherwise."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        seed = bytes.fromhex(raw.get("seed") or raw["signing_seed"])
        suite = str(raw["suite"])
        return suite, get_suite(suite).keypair_from_seed(seed)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a usable key file: {exc!r}") from None


def write_device_key(path: Path, suite: str, seed: bytes | None = None) -> KeyPair:
    """A new device key file, mode 0600 from the start; refuses to overwrite."""
    seed = seed or secrets.token_bytes(32)
    key = get_suite(suite).keypair_from_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"suite": suite, "seed": seed.hex(), "public_key": key.public_key.hex()}, fh)
        fh.write("\n")
    return key
