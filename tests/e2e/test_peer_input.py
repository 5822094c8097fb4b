"""Hostile input over py-libp2p at a real daemon: every frame is refused with a counted reason.

Three honest daemons run (enough for n = 4, f = 1 to commit); the test plays the fourth
member, with that member's real key file, and also a stranger whose peer id is not in genesis.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import multiaddr
import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair as P2PKeyPair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from consensus.messages import Prepare, encode_message
from consensus.signer import SuiteSigner
from ledger.crypto import get_suite
from ledger.encoding import encode
from ledger.tx import chain_tag
from node.config import load_genesis
from node.keys import load_keys
from node.load import sample_txs, submit_all
from node.testnet import Daemon, running
from node.transport import PROTOCOL, encode_frame, new_libp2p_host
from tests.e2e.test_network import chain, settled, wait_until

SUITE = "ed25519"
EXPECTED = {
    "malformed",
    "sender_mismatch",
    "bad_signature",
    "invalid_tx",
    "replay",
    "unknown_channel",
    "oversize",
    "unknown_peer",
    "conflicting",
    "wrong_chain",
}


@pytest.fixture
def three_of_four(tmp_path: Path) -> Iterator[list[Daemon]]:
    with running(tmp_path, 4, SUITE, start=3) as nodes:
        yield nodes


def rejected_counts(node: Daemon) -> dict[str, float]:
    text = urllib.request.urlopen(node.api + "/metrics", timeout=2).read().decode()
    pattern = r'^metroledger_rejected_messages_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


async def send_raw(identity: P2PKeyPair, peer_id: str, address: str, chunks: list[bytes]) -> None:
    """Open our frames protocol to the target as `identity` and write each chunk as is."""
    host = new_libp2p_host(identity)
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = PeerInfo(ID.from_base58(peer_id), [multiaddr.Multiaddr(address)])
        stream = await open_stream(host, info)
        for chunk in chunks:
            try:
                await stream.write(chunk)
            except Exception:  # the target may reset the stream, as it should after oversize
                break
            await trio.sleep(0.05)
        await trio.sleep(0.5)
        await host.close()


async def open_stream(host: Any, info: PeerInfo, attempts: int = 5) -> Any:
    """py-libp2p sometimes fails a first protocol negotiation on a fresh connection; retry."""
    for attempt in range(attempts):
        try:
            await host.connect(info)
            return await host.new_stream(info.peer_id, [PROTOCOL])
        except Exception:
            if attempt == attempts - 1:
                raise
            await trio.sleep(0.5)
    raise AssertionError("unreachable")


def hostile_frames(home: Path, view: int, height: int) -> list[bytes]:
    """Frames a Byzantine member 3 sends; each one must be refused for its own reason."""
    genesis = load_genesis(home.parent / "genesis.json")
    keys = load_keys(home / "keys" / "node_key.json")
    suite = get_suite(SUITE)
    members = [m.public_key for m in genesis.members]
    signer = SuiteSigner(suite, members, keys.signing.secret_key, genesis.genesis_hash)
    tag = chain_tag(genesis.genesis_hash)  # consensus frames start with it
    vote = Prepare(view, height + 1, b"\x11" * 32, 3)
    impersonating = dataclasses.replace(vote, sender=0)
    committed_tx = sample_txs(SUITE, 1, chain=genesis.genesis_hash)[0]
    forged_tx = dataclasses.replace(committed_tx, payload=b"tampered after signing")
    return [
        encode_frame(0, tag + b"\xc1 not msgpack"),
        encode_frame(0, tag + encode_message(dataclasses.replace(vote, signature=b"\x00" * 64))),
        encode_frame(0, tag + encode_message(signer_sign(signer, impersonating))),
        encode_frame(1, encode([forged_tx.to_wire()])),  # forwarded txs travel as a list
        encode_frame(1, encode([committed_tx.to_wire()])),
        encode_frame(7, b"no such channel"),
        # a vote of another network (its own tag): named, not even decoded
        encode_frame(0, b"another!" + encode_message(signer_sign(signer, vote))),
        # member 3 equivocates: two signed prepares for one slot with different digests
        encode_frame(
            0, tag + encode_message(signer_sign(signer, Prepare(view, height + 2, b"\x21" * 32, 3)))
        ),
        encode_frame(
            0, tag + encode_message(signer_sign(signer, Prepare(view, height + 2, b"\x22" * 32, 3)))
        ),
        struct.pack(">IB", 0xFFFF_FFF0, 0) + b"\x00" * 1024,
    ]


def signer_sign(signer: SuiteSigner, message: Prepare) -> Prepare:
    return dataclasses.replace(message, signature=signer.sign(message.signing_bytes()))


def test_hostile_peer_frames_are_refused_counted_and_change_nothing(
    three_of_four: list[Daemon], tmp_path: Path
) -> None:
    nodes = three_of_four
    target = nodes[0]
    first = submit_all([target.api], sample_txs(SUITE, 20, chain=target.chain()), SUITE)
    wait_until("first txs committed", lambda: settled(nodes, first))
    before = target.get("/v1/status")
    chain_before = chain(target)

    genesis = load_genesis(tmp_path / "genesis.json")
    member0 = genesis.members[0]
    member3_home = tmp_path / "node3"
    frames = hostile_frames(member3_home, int(before["view"]), int(before["height"]))
    member3_identity = load_keys(member3_home / "keys" / "node_key.json").identity
    trio.run(send_raw, member3_identity, member0.peer_id, member0.address, frames)
    stranger = create_new_key_pair(b"s" * 32)
    try:  # the target refuses a stranger; it may reset the stream during negotiation
        trio.run(send_raw, stranger, member0.peer_id, member0.address, [encode_frame(0, b"hi")])
    except BaseExceptionGroup as refused:  # py-libp2p raises that out of the host's nursery
        seen = repr(refused).lower()  # py-libp2p words the refusal in one of three ways
        assert any(w in seen for w in ("protocol read failed", "reset", "failed to open a stream"))

    wait_until("every reason counted", lambda: set(rejected_counts(target)) >= EXPECTED, 30)
    assert target.is_ready() and target.process and target.process.poll() is None
    after = target.get("/v1/status")
    assert (after["height"], after["state_root"]) == (before["height"], before["state_root"])
    assert chain(target) == chain_before

    (evidence,) = target.get("/v1/evidence")["evidence"]
    assert (evidence["member"], evidence["kind"]) == (3, "Prepare")
    assert evidence["first"] != evidence["second"]

    more = submit_all([target.api], sample_txs(SUITE, 20, first_seq=2, chain=target.chain()), SUITE)
    wait_until("the network still commits", lambda: settled(nodes, more))
