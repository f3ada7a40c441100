"""Benchmarks cannot rot: each runs once at its smallest size and must complete and print its figures.
Their timing is never asserted (figures are for bench/, read by people)."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SMALLEST = {
    "preflight_local.py": ["--runs", "1", "--functional-runs", "0"],
    "inventory.py": ["--hosts", "50", "--runs", "1"],
    "render.py": ["--hosts", "20", "--runs", "1"],
    "fleet.py": ["--hosts", "2", "--runs", "1"],
    "apply.py": ["--runs", "1", "--hosts", "2"],
    "network_apply.py": ["--runs", "1"],
    "guest.py": ["--runs", "1"],
    "report.py": ["--hosts", "20", "--runs", "1"],
    "bootstrap.py": ["--runs", "1"],
    "storage_smoke.py": ["--runs", "1"],
}


def test_every_benchmark_is_listed():
    assert sorted(p.name for p in (ROOT / "bench").glob("*.py")) == sorted(SMALLEST)


@pytest.mark.slow
@pytest.mark.root  # namespaces, loop devices, libvirt objects of their own
@pytest.mark.parametrize("bench", SMALLEST)
def test_a_benchmark_completes_at_its_smallest_size(bench, libvirtd):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *SMALLEST[bench]], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "median" in done.stdout or "ratio" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr
