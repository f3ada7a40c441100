"""Every fan-out to nodes ends within a second of Ctrl-C or SIGTERM, leaving no program it started: nodes
that hang (a Python that never answers) are not waited for, and their programs are ended."""

import os
import signal
import subprocess
import time

import pytest
import yaml

from tests.conftest import provision_bin
from tests.security.test_render_out import gone, subreaper  # noqa: F401 (a fixture)

COMMANDS = {
    "preflight": ["preflight"],
    "apply --check": ["apply", "--check"],
    "verify": ["verify"],
    "render --diff": ["render", "--diff"],
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fleet_of_hung_nodes_ends_within_a_second(tmp_path, subreaper, command, sig):  # noqa: F811
    hang = tmp_path / "python3"
    hang.write_text(f"#!/bin/sh\ntouch {tmp_path}/started-$$\nexec sleep 120\n")
    hang.chmod(0o755)
    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {f"n{i}": {} for i in range(4)}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": str(hang), "provision": {"virt_type": "qemu"}}}}))
    proc = subprocess.Popen([provision_bin(), *COMMANDS[command], "-i", str(inv), "--timeout", "100", "--forks", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("started-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(tmp_path.glob("started-*"))) == 4, "every node's probe should be running"
    sent = time.monotonic()
    proc.send_signal(sig)  # to provision alone: the hung programs get nothing but what provision does
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{command} did not end within 5 s of {sig.name}")
    assert gone(proc.pid, sent + 5), f"programs {command} started still run 5 s after {sig.name}"
    took = time.monotonic() - sent
    assert took <= 1.0, f"{command} took {took:.2f} s to end after {sig.name}"
    assert proc.returncode in (-signal.SIGTERM, 1, 130), proc.returncode
    assert b"Traceback" not in err, err.decode()


def test_nodes_given_up_on_leave_no_program_running(tmp_path, subreaper):  # noqa: F811
    hang = tmp_path / "python3"
    hang.write_text("#!/bin/sh\nexec sleep 120\n")
    hang.chmod(0o755)
    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n0": {}, "n1": {}}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": str(hang)}}}))
    proc = subprocess.Popen([provision_bin(), "preflight", "-i", str(inv), "--timeout", "2", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out.count(b'"error": "no answer within 2 s"') == 2
    assert gone(proc.pid, time.monotonic() + 1), "a node's program outlived the run"
