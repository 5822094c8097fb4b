"""The public API of a live node on a real 4-node network: its OpenAPI document is valid
3.1 and is made from the same routes it serves; schemathesis sends it well over 1,000
generated requests (every route, valid and invalid input) and every answer is a non-5xx
that matches its documented status, content type and schema; a height /v1/status shows
is always readable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from openapi_spec_validator import validate

from node.admin import build_admin_routes
from node.load import sample_txs, submit_all
from node.routes import openapi_document
from node.service import Service
from node.testnet import Daemon, daemons, init_testnet, wait_ready

SUITE = "ed25519"
CHECKS = ",".join(
    ["not_a_server_error", "status_code_conformance", "content_type_conformance",
     "response_schema_conformance"]
)  # fmt: skip


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    """Long-polls bounded at 1 s here (`[api] max_wait_s`), so generated waits stay short."""
    home = tmp_path_factory.mktemp("api")
    init_testnet(home, 4, SUITE)
    nodes = daemons(home)
    for d in nodes:
        d.config.write_text(d.config.read_text().replace("[api]\n", "[api]\nmax_wait_s = 1\n"))
        d.start()
    try:
        wait_ready(nodes)
        submit_all([nodes[0].api], sample_txs(SUITE, 50, chain=nodes[0].chain()), SUITE)
        yield nodes
    finally:
        for d in nodes:
            d.kill()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_documents_are_valid_openapi_31_and_list_every_route(network: list[Daemon]) -> None:
    status, document = get(network[0].api + "/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"
    validate(document)
    assert "/v1/admin/faults" not in document["paths"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            if "{" in path:  # every path parameter is declared
                declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
                assert declared == {part[1:-1] for part in path.split("/") if "{" in part}
    admin = openapi_document(build_admin_routes(cast(Service, None)), "admin", "1")
    validate(admin)
    assert list(admin["paths"]) == ["/v1/admin/faults", "/openapi.json"]


def test_a_height_in_the_status_is_always_a_stored_block(network: list[Daemon]) -> None:
    """Defect 7: the height came from inside the core before the block was stored."""
    node = network[1]
    stop = threading.Event()

    def load() -> None:
        first = 1000
        while not stop.is_set():
            submit_all(
                [network[0].api],
                sample_txs(SUITE, 20, start=first, chain=network[0].chain()),
                SUITE,
            )
            first += 20

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        heights = set()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            status = node.get("/v1/status")
            code, block = get(f"{node.api}/v1/blocks/{status['height']}")
            if status["height"] > 0:
                assert code == 200, status
                assert block["hash"] == status["block_hash"]
                assert block["state_root"] == status["state_root"]
            heights.add(status["height"])
    finally:
        stop.set()
        loader.join(30)
    assert len(heights) > 5  # blocks were committed while we looked


STREAM = "/v1/events/stream"


def test_event_stream_answers_history_then_ends_and_refuses_bad_queries(
    network: list[Daemon],
) -> None:
    """Server-sent events: the stored events after a cursor, in order, with their ids; a
    stream ends by itself at max_s; a bad query is a 400, not a stream."""
    started = time.monotonic()
    with urllib.request.urlopen(network[1].api + STREAM + "?max_s=1", timeout=10) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        text = stream.read().decode()  # returns once the stream ends
    assert text.startswith("retry: 2000") and time.monotonic() - started < 9
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    for query in ("after=-1", "max_s=0", "max_s=99999", "after=x"):
        code, body = get(f"{network[1].api}{STREAM}?{query}")
        assert code == 400 and body["error"] == "bad_query", query


def test_schemathesis_finds_no_5xx_and_no_answer_off_its_schema(
    network: list[Daemon], tmp_path: Path
) -> None:
    tool = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert tool is not None, "schemathesis is a test dependency (pyproject.toml)"
    har = tmp_path / "requests.har"
    run = subprocess.run(
        [tool, "run", network[2].api + "/openapi.json", "--checks", CHECKS,
         "--max-examples", "80", "--seed", "1", "--phases", "examples,coverage,fuzzing",
         "--workers", "1", "--no-color", "--report", "har", "--report-har-path", str(har),
         "--request-timeout", "10", "--generation-database", "none",
         "--exclude-path", STREAM],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    assert len(entries) >= 1000, f"only {len(entries)} requests"
    served = {(e["request"]["method"], e["request"]["url"].split("?")[0]) for e in entries}
    _, document = get(network[2].api + "/openapi.json")
    del document["paths"]["/openapi.json"]  # schemathesis reads it as the schema, tests not
    del document["paths"][STREAM]  # it answers for up to an hour: test_event_stream
    for path, operations in document["paths"].items():  # every other route was exercised
        prefix = network[2].api + path.split("{")[0]
        for method in operations:
            assert any(m == method.upper() and u.startswith(prefix) for m, u in served), path
