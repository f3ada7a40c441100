"""Benchmark: the fleet report as one HTML page, beside the JSON report of the same fleet.

    .venv/bin/python bench/report.py [--hosts 1000] [--runs 5]

A fleet of ``--hosts`` nodes made from recorded facts (tests/report/test_html.py's, 34 checks each, in
four groups, every 97th unreachable): ``-o html`` (provision.report.html.to_html) beside ``-o json``
(provision.report.json.to_json) of the same report, medians of repeated runs and their ratio. Where
Debian's chromium and chromium-driver are installed, the page is also opened headless: the time its
script takes to build the matrix, and to filter it. Targets: the page rendered in under 1 s for 1,000
nodes; built and filtered in the browser in under 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.plugins import make_plugin_manager  # noqa: E402
from provision.report.html import to_html  # noqa: E402
from provision.report.json import to_json  # noqa: E402
from tests.report.test_html import fleet  # noqa: E402


def median_seconds(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_browser(page: Path, runs: int) -> tuple[float, float] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(driver), options=options)
        try:
            built, filtered = [], []
            for _ in range(runs):
                browser.get(page.as_uri())
                while browser.execute_script("return document.body.dataset.ready") != "true":
                    time.sleep(0.01)
                built.append(int(browser.execute_script("return document.body.dataset.builtMs")))
                browser.find_element(By.ID, "filter").send_keys("cmp00")
                filtered.append(int(browser.execute_script("return document.body.dataset.filterMs")))
        finally:
            browser.quit()
    return statistics.median(built) / 1000, statistics.median(filtered) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from provision.plugins import Hooks

    report = fleet(Hooks(make_plugin_manager(autoload=False)), args.hosts)
    checks = sum(len(h.checks) for h in report.hosts)
    ours = median_seconds(lambda: to_html(report), args.runs)
    theirs = median_seconds(lambda: to_json(report), args.runs)
    page = to_html(report)
    print(f"{args.hosts} nodes, {checks} results; medians of {args.runs} runs")
    print(f"-o html   median {ours:.3f} s ({len(page) / 2**20:.1f} MiB); {'meets' if ours < 1 else 'MISSES'} the 1 s target")
    print(f"-o json   median {theirs:.3f} s")
    print(f"ratio html / json = {ours / theirs:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        path.write_text(page)
        measured = in_browser(path, max(1, min(args.runs, 3)))
    if measured is None:
        print("chromium and chromium-driver are not installed: no figure from a browser")
    else:
        built, filtered = measured
        print(f"in headless chromium: matrix built in median {built:.3f} s, filtered in {filtered:.3f} s; "
              f"{'meets' if built < 1 and filtered < 1 else 'MISSES'} the 1 s target")


if __name__ == "__main__":
    main()
