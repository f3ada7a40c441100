"""``-o html`` in a real browser: Debian's chromium, headless, driven by chromium-driver through selenium.
A 1,000-node fleet made from recorded facts (Intel VT-x, AMD-V, a VM without flags, this PVM machine),
a hostile one, and this machine's own preflight: counts against the JSON report, a click on a failing
cell, the filter, nothing executed from the data, and a screenshot."""

from __future__ import annotations

import json
import random
import shutil
import time

import pytest

from provision.report.html import to_html
from provision.report.json import to_json
from provision.results import HostReport, Report
from provision.stages.preflight import evaluate
from tests.nodes import ENOENT, healthy_node

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                "installed (setup.sh installs them)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def fleet(hooks, count: int, names=None) -> Report:
    """``count`` nodes from recorded facts, a few of each kind, in four groups; every 97th unreachable."""
    rng = random.Random(26)
    kinds = [
        (healthy_node(), {}),
        (healthy_node(cpu="amd_v"), {}),
        (healthy_node(cpu="vm_noflags", **{"kvm.device": ENOENT}), {}),
        (healthy_node(cpu="pvm_host", **{"host.vhost_net": ENOENT}), {}),
        (healthy_node(**{"libvirt.socket.0": ENOENT, "node.processes": {"names": ["sshd"]}}), {}),
    ]
    settings = hooks.settings_model().model_dump(mode="json")
    evaluated = [evaluate(facts, settings, hooks=hooks) for facts, _ in kinds]
    hosts = []
    for i in range(count):
        name = names[i] if names else f"cmp{i:04d}"
        group = ("rack1", "rack2", "rack3", "gpu")[i % 4]
        if i % 97 == 96:
            hosts.append(HostReport(name, False, error="ssh: connect to host port 22: Connection refused", groups=(group,)))
            continue
        checks, decision = evaluated[rng.randrange(len(evaluated))]
        hosts.append(HostReport(name, True, decision, checks, groups=(group, "compute")))
    return Report(tuple(hosts))


def open_report(browser, tmp_path, report: Report, name="report.html"):
    page = tmp_path / name
    page.write_text(to_html(report))
    start = time.monotonic()
    browser.get(page.as_uri())
    for _ in range(200):
        if browser.execute_script("return document.body.dataset.ready") == "true":
            break
        time.sleep(0.05)
    return time.monotonic() - start


def number(browser, element_id: str) -> int:
    return int(browser.find_element("css selector", f"#{element_id} b").text)


def test_a_thousand_nodes_counts_click_and_filter(browser, tmp_path, hooks):
    from selenium.webdriver.common.by import By

    report = fleet(hooks, 1000)
    data = json.loads(to_json(report))
    opened = open_report(browser, tmp_path, report)
    assert number(browser, "n-nodes") == 1000
    for status in ("pass", "warn", "fail", "skip"):
        assert number(browser, f"n-{status}") == data["summary"][status], status
    down = [h for h in data["hosts"] if not h["reachable"]]
    assert number(browser, "n-unreachable") == len(down) == 10
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#unreachable li")] == [
        f"{h['host']}: {h['error']}" for h in sorted(down, key=lambda h: h["host"])]
    decided = {}
    for h in data["hosts"]:
        if h["decision"]:
            decided[h["decision"]["virt_type"]] = decided.get(h["decision"]["virt_type"], 0) + 1
    for virt_type, n in decided.items():
        assert number(browser, f"n-decision-{virt_type}") == n
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.host")
    assert len(rows) == 1000
    assert [g.text.split(" (")[0] for g in browser.find_elements(By.CSS_SELECTOR, "tr.group")] == ["gpu", "rack1", "rack2", "rack3"]
    headers = [th.get_attribute("title") for th in browser.find_elements(By.CSS_SELECTOR, "thead th.check")]
    fails = {cid: sum(1 for h in data["hosts"] for c in h["checks"] if c["id"] == cid and c["status"] == "fail") for cid in headers}
    assert fails[headers[0]] == max(fails.values()) > 0  # the failing checks first
    assert list(fails.values()) == sorted(fails.values(), reverse=True)

    # a failing cell: its message, evidence and remedy, as the JSON report has them
    cell = browser.find_element(By.CSS_SELECTOR, "td.cell.s-fail")
    host = cell.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "th.node button").text
    check_id = cell.get_attribute("title").split(": ")[0]
    cell.click()
    want = next(c for h in data["hosts"] if h["host"] == host for c in h["checks"] if c["id"] == check_id)
    assert browser.find_element(By.ID, "detail-message").text == f"FAIL: {want['message']}"
    assert json.loads(browser.find_element(By.ID, "detail-evidence").text) == want["evidence"]
    if want["remedy"]:
        assert browser.find_element(By.ID, "detail-remedy").text == f"remedy: {want['remedy']}"
    assert cell.text == "F"  # status is a letter too, not colour alone

    # the filter: node names narrow the rows, check ids the columns
    box = browser.find_element(By.ID, "filter")
    start = time.monotonic()
    box.send_keys("cmp00")
    shown = [r for r in rows if r.is_displayed()]
    filtered = time.monotonic() - start
    assert len(shown) == 100 and browser.find_element(By.ID, "shown").text == "100 of 1000 nodes"
    box.clear()
    box.send_keys("kvm.")
    assert browser.find_element(By.ID, "shown").text.endswith(f"{sum(1 for h in headers if 'kvm.' in h)} of {len(headers)} checks")
    visible = [th for th in browser.find_elements(By.CSS_SELECTOR, "thead th.check") if th.is_displayed()]
    assert visible and all("kvm." in th.get_attribute("title") for th in visible)
    browser.save_screenshot(str(tmp_path / "fleet.png"))
    assert (tmp_path / "fleet.png").stat().st_size > 10_000
    built, filter_ms = (int(browser.execute_script(f"return document.body.dataset.{k}")) for k in ("builtMs", "filterMs"))
    assert opened < 10 and filtered < 10 and built < 5000 and filter_ms < 5000  # generous: bench/report.py measures


def test_html_and_script_in_names_and_messages_are_text(browser, tmp_path, hooks):
    from selenium.webdriver.common.by import By

    hostile = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    names = [f"n1{hostile}", "</script><script>window.pwned=3</script>", "n3"]
    report = fleet(hooks, 3, names=names)
    first = report.hosts[0]
    checks = tuple(c.__class__(c.id, "fail", f"{hostile} & {c.message}", {"x": hostile}, hostile) for c in first.checks)
    report = Report((first.__class__(first.host, True, first.decision, checks, groups=(hostile,)), *report.hosts[1:]))
    open_report(browser, tmp_path, report, "hostile.html")
    assert browser.execute_script("return window.pwned") is None
    buttons = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "th.node button")]
    assert sorted(buttons) == sorted(names)
    browser.find_element(By.CSS_SELECTOR, "td.cell.s-fail").click()
    assert hostile in browser.find_element(By.ID, "detail-message").text
    assert browser.execute_script("return window.pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    browser.save_screenshot(str(tmp_path / "hostile.png"))


def test_this_machines_own_preflight(browser, tmp_path, cli):
    from selenium.webdriver.common.by import By

    page = tmp_path / "local.html"
    result = cli("preflight", "-o", "html", "--report", str(page))
    assert result.exit_code in (0, 1) and result.stdout == ""
    data = json.loads(cli("preflight", "-o", "json").stdout)
    browser.get(page.as_uri())
    assert number(browser, "n-nodes") == 1
    assert [b.text for b in browser.find_elements(By.CSS_SELECTOR, "th.node button")] == ["localhost"]
    browser.find_element(By.CSS_SELECTOR, "th.node button").click()
    decision = data["hosts"][0]["decision"]
    assert browser.find_element(By.ID, "detail-decision").text.startswith(f"virt_type {decision['virt_type']}, cpu_mode")
    reasons = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#detail li.reason")]
    embedded = browser.execute_script("return JSON.parse(document.getElementById('report-data').textContent)")
    assert reasons == embedded["hosts"][0]["decision"]["reasons"]  # this run's, shown as they are
    assert len(reasons) == len(decision["reasons"]) and reasons[0] == decision["reasons"][0]  # another run's agree
    browser.save_screenshot(str(tmp_path / "local.png"))


def test_the_page_needs_no_network_and_prints():
    page = to_html(Report((HostReport("n1", False, error="down"),)))
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "default-src 'none'" in page and "@media print" in page
    assert "<script src" not in page and "<link" not in page
