"""What runs on nodes keeps its promise: Python 3.6 syntax, standard library only (pyroute2 in the netlink
step, which Debian's python3-pyroute2 brings), since a node has its own Python and nothing of ours."""

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NODE_SCRIPTS = {
    **{str(p.relative_to(ROOT)): set() for p in sorted((ROOT / "provision" / "node").glob("*.py"))
       if p.name != "__init__.py"},
    "plugins/network/netlink_agent.py": {"pyroute2"},
}


@pytest.mark.parametrize("script", NODE_SCRIPTS)
def test_a_node_script_is_python_3_6_and_standard_library_only(script):
    from provision.testing import outside_stdlib

    outside = outside_stdlib((ROOT / script).read_text(), script, frozenset(NODE_SCRIPTS[script]))
    assert outside == [], f"{script} imports {sorted(outside)}, which a node may not have"


def test_every_node_module_is_sent_in_a_bundle_and_no_module_is_long():
    """Every module of provision/node/ goes to nodes in the probe's, the agent's, the remedies' or the session's
    bundle, after the modules it imports (the bundle registers them in that order); the shared helpers come
    first in each of the others; none is over 600 lines."""
    from provision.node import BUNDLES, COMMON, SESSION

    folder = ROOT / "provision" / "node"
    assert sorted(set(sum(BUNDLES, ()))) == sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")
    assert all(order[:len(COMMON)] == COMMON for order in BUNDLES if order != SESSION)
    for order in BUNDLES:
        for i, name in enumerate(order):
            tree = ast.parse((folder / f"{name}.py").read_text())
            needs = {n.module or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level
                     for a in n.names}
            assert needs <= set(order[:i]), f"{name} imports {sorted(needs - set(order[:i]))}, not sent before it"
    for script in NODE_SCRIPTS:
        assert len((ROOT / script).read_text().splitlines()) <= 600, script


def test_a_bundle_runs_as_one_program(tmp_path):
    """The probe's bundle, run as a node runs it: python -c BOOT with the program on standard input."""
    import json
    import subprocess

    from provision.node import PROBE, bundle
    from provision.remote.probe import BOOT

    program = bundle(PROBE, {"os": {"op": "read", "path": "/etc/os-release"}})
    done = subprocess.run([sys.executable, "-I", "-S", "-c", BOOT], input=program.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "ID=" in json.loads(done.stdout)["os"]["text"]


def test_the_type_checkers_name_costs_a_node_nothing():
    for script in NODE_SCRIPTS:
        source = (ROOT / script).read_text()
        assert "\nimport typing" not in source and "\nfrom typing" not in source, script
        assert Path(ROOT / script).exists()


NOISY = '''import json, subprocess, sys


def main(spec):
    subprocess.run(["echo", "from a child"])  # inherits the session's standard output: sent to its stderr
    subprocess.run(["cat"])  # inherits its standard input: /dev/null, never the requests
    if spec.get("fail"):
        raise RuntimeError("asked to fail")
    sys.stdout.write(json.dumps({"echo": spec}))
'''


def test_a_session_answers_each_request_and_keeps_its_pipes_from_children():
    """The node side of one connection per run: the session program, then framed requests on one standard
    input; each module is sent once; a child cannot read the requests nor write into the answers; a
    failing request is answered with why, and the session goes on; the end of the input ends it."""
    import json
    import subprocess

    from provision.node import PROBE, SESSION, bundle, sources
    from provision.remote.session import SESSION_BOOT, frame

    def request(call, spec, load=()):
        return frame(json.dumps({"load": list(load), "call": call, "spec": spec}).encode())

    data = (frame(bundle(SESSION, {}).encode())
            + request("probe", {"os": {"op": "read", "path": "/etc/os-release"}}, sources(PROBE))
            + request("probe", {"me": {"op": "exists", "path": "/proc/self"}})
            + request(None, None, [("noisy", NOISY)])  # modules sent ahead: loaded, answered with nothing
            + request("noisy", {"n": 1})
            + request("noisy", {"fail": True})
            + request("noisy", {"n": 2}))
    done = subprocess.run([sys.executable, "-I", "-S", "-c", SESSION_BOOT], input=data, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answers, rest = [], done.stdout
    while rest:
        head, _, rest = rest.partition(b"\n")
        answers.append(rest[:int(head)])
        rest = rest[int(head):]
    assert len(answers) == 6
    first, second = (json.loads(a[1:]) for a in answers[:2])
    assert "ID=" in first["os"]["text"] and second["me"] == {"path": "/proc/self", "exists": True}
    assert first["_probe"]["pid"] == second["_probe"]["pid"]  # one program served both
    assert answers[2] == b"="
    assert json.loads(answers[3][1:]) == {"echo": {"n": 1}}
    assert answers[4][:1] == b"!" and b"RuntimeError: asked to fail" in answers[4]
    assert json.loads(answers[5][1:]) == {"echo": {"n": 2}}
    assert done.stderr.count(b"from a child") == 3
