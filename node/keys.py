"""Node key files: a libp2p identity key and a consensus signing key (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair as P2PKeyPair
from libp2p.peer.id import ID

from ledger.crypto import KeyPair, get_suite
from node.config import ConfigError


@dataclass(frozen=True)
class NodeKeys:
    suite: str
    signing_seed: bytes
    identity_seed: bytes

    @property
    def signing(self) -> KeyPair:
        return get_suite(self.suite).keypair_from_seed(self.signing_seed)

    @property
    def identity(self) -> P2PKeyPair:
        return create_new_key_pair(self.identity_seed)

    @property
    def peer_id(self) -> str:
        return str(ID.from_pubkey(self.identity.public_key))


def generate_keys(suite: str) -> NodeKeys:
    get_suite(suite)
    return NodeKeys(suite, secrets.token_bytes(32), secrets.token_bytes(32))


def write_keys(keys: NodeKeys, path: Path) -> None:
    """Write with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "suite": keys.suite,
        "signing_seed": keys.signing_seed.hex(),
        "identity_seed": keys.identity_seed.hex(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def load_keys(path: Path) -> NodeKeys:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        keys = NodeKeys(
            raw["suite"], bytes.fromhex(raw["signing_seed"]), bytes.fromhex(raw["identity_seed"])
        )
    except OSError as exc:
        raise ConfigError(path, "(file)", exc.strerror or str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(path, "(keys)", f"malformed key file: {exc}") from None
    if len(keys.signing_seed) != 32 or len(keys.identity_seed) != 32:
        raise ConfigError(path, "(keys)", "seeds must be 32 bytes")
    return keys
