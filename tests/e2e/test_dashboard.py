"""The dashboard as a person uses it: real headless Chromium (Debian's, driven by
Playwright) clicking through every page of a running 4-node network that holds the
demo's data: each page renders real figures, a registry search by serial finds the
record and the CSV download holds it, and an alert raised while the calibration page is
open arrives there live (server-sent events).

METROLEDGER_SCREENSHOTS=DIR writes a screenshot of each page there (docs/dashboard/ is
made so)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metroledger.demo import DEMO_SOFTWARE, demo_contracts, populate
from node.load import sample_txs, submit_all
from node.testnet import Daemon, running
from tests.e2e.test_network import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALERT_AFTER_S = 30  # accept limit of the test chain: an order not accepted by then alerts
VEHICLES, READINGS = 40, 300
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    directory = tmp_path_factory.mktemp("dashboard")
    contracts = demo_contracts(VEHICLES, accept_limit_s=ALERT_AFTER_S)
    with running(directory, 4, "ed25519", contracts) as nodes:
        assert populate(nodes, directory, "ed25519", READINGS, VEHICLES)
        yield nodes


@pytest.fixture(scope="module")
def browser(network: list[Daemon]) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = chromium.new_context(viewport={"width": 1300, "height": 1000},
                                       accept_downloads=True)  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.errors = errors
        yield page
        chromium.close()


def open_page(page: Any, node: Daemon, name: str) -> None:
    page.goto(f"{node.api}/dashboard/#/{name}")
    page.wait_for_selector("#page[data-ready=yes]", timeout=20_000)
    assert page.locator("#page .error").count() == 0, page.locator("#page .error").all_inner_texts()
    assert page.errors == [], page.errors


def shoot(page: Any, name: str) -> None:
    target = os.environ.get("METROLEDGER_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(300)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def rows(page: Any, table: str) -> list[list[str]]:
    found = page.locator(f"#{table} tbody tr")
    return [found.nth(i).locator("td").all_inner_texts() for i in range(found.count())]


def test_network_page_shows_every_member_at_its_height(browser: Any, network: list[Daemon]) -> None:
    open_page(browser, network[1], "network")
    browser.wait_for_selector("#chart-tps path")
    members = rows(browser, "members")
    assert [m[1] for m in members] == ["node0", "node1", "node2", "node3"]
    height = network[1].get("/v1/status")["height"]
    assert all(int(m[4]) >= height - 5 for m in members), members  # read from each node
    assert browser.locator("#card-node .value").inner_text() == "node1"
    shoot(browser, "network")


def test_fuel_page_lists_suspects_first_with_their_evidence(
    browser: Any, network: list[Daemon]
) -> None:
    open_page(browser, network[0], "fuel")
    listed = rows(browser, "dispensers")
    truth = network[0].get("/v1/dispensers")["dispensers"]
    assert len(listed) == len(truth) == 8
    suspects = [d["dispenser_id"] for d in truth if d["status"] == "suspect"]
    assert suspects and [r[0] for r in listed[: len(suspects)]] == sorted(
        suspects, key=lambda s: next(d["estimate_ppm"] for d in truth if d["dispenser_id"] == s)
    )
    assert browser.locator("#map circle").count() == 4  # every station placed by coordinates
    browser.locator("#dispensers tbody tr").first.click()
    browser.wait_for_selector("#votes tbody tr")
    assert browser.locator("#verdict").inner_text().startswith("suspect")
    assert browser.locator("#votes tbody tr").count() >= 10
    shoot(browser, "fuel")


def test_verification_page_shows_the_overview_and_a_tasks_recheck(
    browser: Any, network: list[Daemon]
) -> None:
    open_page(browser, network[2], "verification")
    overview = network[2].get("/v1/meter/overview")
    full = sum(i["full"]["records"] for i in overview["institutions"])
    assert browser.locator("#card-full .value").inner_text() == str(full)
    assert browser.locator("#chart-batches rect").count() >= len(overview["batches"])
    tasks = rows(browser, "tasks")
    assert len(tasks) == 3 and tasks[2][5] == '"not_accepted"'  # the 30 % batch
    browser.locator("#tasks tbody tr").nth(2).click()
    browser.wait_for_selector("#task-result")
    assert "not_accepted" in browser.locator("#task-result").inner_text()
    shoot(browser, "verification")


def test_registry_search_by_serial_finds_the_record_and_the_csv_holds_it(
    browser: Any, network: list[Daemon]
) -> None:
    open_page(browser, network[3], "registry")
    entries = network[3].get("/v1/registry?limit=1000")["entries"]
    entry = next(e for e in entries if e["kind"] == "first" and e["certificate_no"])
    browser.fill("#registry-search input[name=serial]", entry["barcode"])
    browser.click("#registry-search button")
    records = network[3].get(f"/v1/registry?serial={entry['barcode']}")["total"]  # first, re-check
    expected = re.compile(f"^{records} results")
    sync_api.expect(browser.locator("#registry-total")).to_have_text(expected)
    found = rows(browser, "registry")
    assert {r[0] for r in found} == {entry["barcode"]} and len(found) == records
    assert [entry["valid_until"], entry["certificate_no"]] in [r[7:9] for r in found]
    with browser.expect_download() as download:
        browser.click("#registry-csv")
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {r["barcode"] for r in table} == {entry["barcode"]} and len(table) == records
    assert entry["certificate_no"] in {r["certificate_no"] for r in table}
    shoot(browser, "registry")


def test_twin_page_shows_an_instruments_log(browser: Any, network: list[Daemon]) -> None:
    order = network[0].get("/v1/meter/work_orders?kind=replacement&status=evaluated")["orders"][0]
    open_page(browser, network[0], f"twin/{order['barcode']}")
    log = [r[1] for r in rows(browser, "twin-log")]
    assert log[0] == "registered" and "work_order_evaluated" in log
    shoot(browser, "twin")
    vehicle = network[0].get("/v1/dispensers/disp-0000/votes")["votes"][0]["vehicle_id"]
    open_page(browser, network[0], f"twin/{vehicle}")  # its model's software is fixed
    approval = browser.locator("#type-approval").inner_text()
    assert f"{DEMO_SOFTWARE.hex()} ← its last reading" in approval, approval
    assert "software" in [r[1] for r in rows(browser, "twin-log")]
    shoot(browser, "twin-vehicle")


def test_an_alert_raised_while_the_calibration_page_is_open_arrives_live(
    browser: Any, network: list[Daemon]
) -> None:
    waiting = [o for o in network[0].get("/v1/meter/work_orders?status=created")["orders"]
               if not o["alerts"]]  # fmt: skip
    assert waiting, "the demo leaves orders not accepted, and none has alerted yet"
    open_page(browser, network[0], "service")
    before = len(rows(browser, "alerts"))
    assert len(rows(browser, "orders")) == len(network[0].get("/v1/meter/work_orders")["orders"])
    due_s = max(o["created_ms"] for o in waiting) / 1000 + ALERT_AFTER_S + 1
    time.sleep(max(0.0, due_s - time.time()))
    note = sample_txs("ed25519", 1, chain=network[0].chain())
    submit_all([network[0].api], note, "ed25519")  # a block: block time passes the deadline
    browser.wait_for_selector("#alerts tr.live", timeout=20_000)
    live = browser.locator("#alerts tr.live").first.locator("td").all_inner_texts()
    assert live[1] == "not accepted in time" and live[2] in {o["order"] for o in waiting}
    assert len(rows(browser, "alerts")) > before
    wait_until("the count follows", lambda: int(browser.locator("#alert-count").inner_text())
               == network[0].get("/v1/meter/alerts")["total"])  # fmt: skip
    shoot(browser, "calibration")
