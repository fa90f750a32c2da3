"""The dashboard at ``/ui`` in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): log in with the admin key, watch live numbers change while traffic flows, check the
spend view against the admin API, eject and restore a target, follow the live log (no prompt
text), with no console errors. Screenshots of each view go to ``$TIERGATE_SCREENSHOTS`` (the
docs' images: ``TIERGATE_SCREENSHOTS=docs/img pytest -s tests/integration/test_dashboard.py``).

Chromium is installed by the fixture when missing (``apt-get install -y chromium``, as root);
if that is impossible the test fails, it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.integration.conftest import key_hash

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
KEY = "tg-test-key-dashboard"
ADMIN = "tg-test-admin-dashboard"
SECRET = "SECRET-PROMPT-TEXT-7f3a"


def rules(sim_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    price = "price: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}"
    return f"""
version: ui-1
targets:
  primary: {{provider: openai, model: sim-fast, api_base: "{sim}", {price}}}
  backup: {{provider: openai, model: sim-smart, api_base: "{sim}", {price}}}
aliases:
  fast: {{targets: [primary, backup]}}
keys:
  - id: web-app
    team: web
    sha256: {key_hash(KEY)}
    quota: {{budgets: {{tokens_per_day: 100000, usd_per_day: 5}}}}
admin: {{key_sha256: {key_hash(ADMIN)}}}
governance:
  teams: {{web: {{budgets: {{usd_per_month: 50}}}}}}
"""


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (as root)")
        install = [apt, "install", "-y", "-q", "chromium"]
        if subprocess.run(install, check=False, timeout=900).returncode != 0:
            subprocess.run([apt, "update", "-q"], check=True, timeout=300)  # a clean machine
            subprocess.run(install, check=True, timeout=900)
    return CHROMIUM


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


def admin_get(root: str, path: str) -> dict:
    request = urllib.request.Request(root + path, headers={"authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def until(check, what: str, timeout_s: float = 20.0) -> None:
    """Poll ``check`` (the page's CSP forbids Playwright's evaluated wait functions)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def number(page: Page, selector: str) -> float:
    text = page.text_content(selector) or "-"
    cleaned = text.replace(",", "").replace("$", "").strip()
    return float(cleaned) if cleaned not in ("-", "") else -1.0


def test_dashboard(page: Page, spawn_gateway, sim_port: int, tmp_path: Path) -> None:
    gw = spawn_gateway(rules(sim_port))
    root = f"http://127.0.0.1:{gw.port}"
    shots = Path(os.environ.get("TIERGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    weight: dict[str, int] = {}
    page.on(
        "response",
        lambda r: weight.__setitem__(r.url, len(r.body())) if "/ui" in r.url else None,
    )
    client = openai.OpenAI(base_url=root + "/v1", api_key=KEY, max_retries=0, timeout=10)

    def traffic(n: int, **headers: str) -> list[str]:
        ids = []
        for i in range(n):
            raw = client.chat.completions.with_raw_response.create(
                model="fast",
                messages=[{"role": "user", "content": f"{SECRET} {i}"}],
                extra_headers={"x-tiergate-feature": "search", **headers},
            )
            ids.append(raw.headers["x-request-id"])
        return ids

    try:
        traffic(3)
        started = time.perf_counter()
        page.goto(root + "/ui")  # returns at the load event
        load_ms = (time.perf_counter() - started) * 1000
        page.fill("#admin-key", "tg-wrong")
        page.click("#login")
        until(lambda: bool(page.text_content("#login-error")), "the login error")
        # Chromium logs the refused key's 401 as a console error; that one is expected.
        assert all("401" in p for p in problems), problems
        problems.clear()

        page.fill("#admin-key", ADMIN)
        page.click("#login")
        until(lambda: number(page, "#stat-requests") >= 3, "the request count")
        before = number(page, "#stat-requests")
        traffic(5)
        until(lambda: number(page, "#stat-requests") >= before + 5, "live numbers to change")
        page.wait_for_selector("#table-cache tbody tr, #table-latency tbody tr")
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

        page.click("#tabs button[data-view=spend]")
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        since = (hour - timedelta(hours=23)).isoformat().replace("+00:00", "Z")
        end = (hour + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        query = f"/admin/usage?group_by=team&from={since}&to={end}"
        expected = sum(r["requests"] for r in admin_get(root, query)["data"])
        until(lambda: number(page, "#spend-total-requests") == expected, "spend = admin API")
        assert expected >= 8
        page.wait_for_selector("#table-spend tbody tr")
        page.screenshot(path=str(shots / "dashboard-spend.png"), full_page=True)

        page.click("#tabs button[data-view=targets]")
        state = "#table-targets tr[data-target=primary] td.state"
        page.wait_for_selector(state)
        assert page.text_content(state) == "closed"
        page.click("#table-targets tr[data-target=primary] button[data-action=eject]")
        until(lambda: page.text_content(state) == "open", "the breaker to show open")
        status = admin_get(root, "/admin/targets")["targets"]
        assert next(t for t in status if t["name"] == "primary")["state"] == "open"
        raw = client.chat.completions.with_raw_response.create(
            model="fast", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["x-tiergate-target"] == "backup"
        page.screenshot(path=str(shots / "dashboard-targets.png"), full_page=True)
        page.click("#table-targets tr[data-target=primary] button[data-action=restore]")
        until(lambda: page.text_content(state) == "closed", "the breaker to show closed")

        page.click("#tabs button[data-view=budgets]")
        page.wait_for_selector("#table-budgets tbody tr")
        budgets = admin_get(root, "/admin/budgets")["data"]
        assert {(b["scope"], b["budget"]) for b in budgets} >= {
            ("key", "tokens_per_day"),
            ("team", "usd_per_month"),
        }
        assert page.locator("#table-budgets tbody tr").count() == len(budgets)
        page.screenshot(path=str(shots / "dashboard-budgets.png"), full_page=True)

        page.click("#tabs button[data-view=log]")
        ids = traffic(2)
        page.wait_for_selector(f"#table-log tr[data-request-id='{ids[-1]}']")
        assert SECRET not in page.content()
        page.screenshot(path=str(shots / "dashboard-log.png"), full_page=True)
    finally:
        client.close()
    assert problems == []
    total_kb = sum(weight.values()) / 1024
    print(
        f"\ndashboard: page weight {total_kb:.1f} KiB ({len(weight)} files), load {load_ms:.0f} ms"
    )
