"""`metroledger testnet up` as a user runs it: Ctrl-C stops every node, and so does a
second Ctrl-C pressed while they are stopping (or `timeout`, which delivers its signal
twice): no node may be left running behind the network."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from node.testnet import init_testnet

START_S = 90


def start_up(directory: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`testnet up` started; returns it and its nodes' API URLs once it says it is up."""
    up = subprocess.Popen(
        [sys.executable, "-m", "metroledger", "testnet", "up", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    urls: list[str] = []
    deadline = time.monotonic() + START_S
    for line in up.stdout:
        urls += re.findall(r"^node\d+: (http://\S+)", line)
        if "network up" in line or time.monotonic() > deadline:
            break
    assert len(urls) == 4, f"testnet up printed {urls}"
    return up, urls


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def node_processes(directory: Path) -> list[int]:
    """Processes whose command line names a config under `directory`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"node run" in cmdline and str(directory).encode() in cmdline:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("interrupts", [1, 2])
def test_ctrl_c_stops_every_node(tmp_path: Path, interrupts: int) -> None:
    init_testnet(tmp_path, 4, "ed25519")
    up, urls = start_up(tmp_path)
    try:
        assert all(answers(u) for u in urls)
        for _ in range(interrupts):
            up.send_signal(signal.SIGINT)
            time.sleep(0.05)
        up.wait(30)
        left = node_processes(tmp_path)
        serving = [u for u in urls if answers(u)]
    finally:
        if up.poll() is None:
            up.kill()
        for pid in node_processes(tmp_path):  # leave nothing behind, even on failure
            os.kill(pid, signal.SIGKILL)
    assert left == [], f"{len(left)} nodes left running"
    assert serving == []
