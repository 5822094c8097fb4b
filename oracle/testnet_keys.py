"""Find the keys and node URLs of a local testnet folder (what `testnet init` wrote), so
`metroledger oracle simulate` needs no key arguments there. Reads files only."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ledger.crypto import KeyPair
from oracle.keys import load_signing_key


@dataclass(frozen=True)
class TestnetRoles:
    suite: str
    node_urls: list[str]
    manufacturer: KeyPair  # member 0 (members may register devices)
    authorities: list[KeyPair]  # members 1..k


def find_testnet(start: Path) -> Path | None:
    """`start` itself if it holds genesis.json and node*/ folders, else None."""
    if (start / "genesis.json").is_file() and any(start.glob("node*/node.toml")):
        return start
    return None


def load_testnet_roles(directory: Path) -> TestnetRoles:
    """ValueError naming the file if the folder is not a usable testnet."""
    genesis_path = directory / "genesis.json"
    try:
        genesis = json.loads(genesis_path.read_text(encoding="utf-8"))
        k = int(genesis.get("contracts", {}).get("devices", {}).get("endorsements_required", 2))
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{genesis_path}: {exc}") from None
    homes = sorted(directory.glob("node*/node.toml"), key=lambda p: int(p.parent.name[4:] or 0))
    if len(homes) < k + 1:
        raise ValueError(f"{directory}: needs {k + 1} node folders, found {len(homes)}")
    urls = []
    for config in homes:
        try:
            api = tomllib.loads(config.read_text(encoding="utf-8"))["api"]
            urls.append(f"http://{api.get('host', '127.0.0.1')}:{int(api['port'])}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{config}: [api] {exc!r}") from None
    keys = [load_signing_key(h.parent / "keys" / "node_key.json") for h in homes[: k + 1]]
    return TestnetRoles(keys[0][0], urls, keys[0][1], [key for _, key in keys[1:]])
