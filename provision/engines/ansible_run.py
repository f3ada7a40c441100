"""``provision preflight|apply|verify --engine ansible``: the same command line and reports, run by Ansible
itself (ansible-runner, ansible-playbook) with the provision.compute collection's task for each host.
The nodes are selected and validated by provision first, as with the direct engine (bad input is exit
2 before Ansible starts); Ansible then connects, forks and reports, and each host's result becomes the
report the direct engine prints."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from provision.errors import InputError, Unreachable

COLLECTIONS = Path(__file__).resolve().parents[2]  # the checkout's ansible_collections/ lives here
# what Ansible reads as a pattern in --limit (globs, ranges, unions, exclusions, regexes, @files)
PATTERN = re.compile(r"[*?\[\]:!&,~@^]")


def limit_for(nodes) -> str:
    """``--limit`` naming exactly ``nodes``; a host name Ansible would read as a pattern (one that could
    select other hosts of the inventory) is refused, naming it."""
    odd = [n.name for n in nodes if PATTERN.search(n.name) or not n.name]
    if odd:
        raise InputError(f"--engine ansible: host {', '.join(map(repr, odd))}: Ansible reads its name as a host pattern "
                         "in --limit (it could select other hosts); rename it, or use the direct engine")
    return ",".join(n.name for n in nodes)


def _run(inventory: str, nodes, task: dict, *, forks: int, check: bool = False, diff: bool = False) -> dict[str, dict]:
    """The task on every node through ansible-runner: ``{host: the task's result}``."""
    try:
        import ansible_runner
    except ImportError:
        raise InputError("--engine ansible needs ansible-runner: pip install ansible-runner") from None
    if not inventory:
        raise InputError("--engine ansible needs an Ansible inventory (-i INVENTORY)")
    found = {}
    with tempfile.TemporaryDirectory(prefix="provision-ansible-") as work:
        book = Path(work) / "project" / "provision.yml"
        book.parent.mkdir()
        book.write_text(yaml.safe_dump([{"name": "provision", "hosts": "all", "gather_facts": False, "tasks": [task]}]))
        cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
        # the ansible-playbook beside this Python (a venv's) first, else the one on PATH
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        run = ansible_runner.run(
            private_data_dir=work, playbook=str(book), inventory=str(Path(inventory).resolve()),
            limit=limit_for(nodes), forks=max(1, forks), quiet=True, cmdline=cmdline or None,
            envvars={"PATH": path, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_PIPELINING": "True",
                     "ANSIBLE_HOST_KEY_CHECKING": "False"})
        for event in run.events:
            data = event.get("event_data") or {}
            if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable") and data.get("host"):
                result = dict(data.get("res") or {})
                if event["event"] == "runner_on_unreachable":
                    result["unreachable"] = True
                found[data["host"]] = result
        if not found:
            said = [ln for ln in run.stdout.read().splitlines() if ln.strip()]
            raise Unreachable(f"ansible-playbook ran no task ({run.status}, exit {run.rc}): "
                              + " ".join(said[-3:])[-600:])
    return found


def _unreachable(result: dict | None) -> str:
    if result is None:
        return "Ansible ran no task for this host"
    return (result.get("msg") or "unreachable") if result.get("unreachable") else ""


def _checks(result: dict) -> tuple:
    from provision.results import CheckResult

    return tuple(CheckResult(c["id"], c["status"], c["message"], c.get("evidence") or {}, c.get("remedy") or "")
                 for c in result["checks"])


def _host_reports(nodes, results: dict[str, dict], reachable) -> list:
    """Each node's report: unreachable with Ansible's reason, else ``reachable(name, result)``; a task
    that failed before it checked anything (bad settings) is the user's error."""
    from provision.results import HostReport

    hosts = []
    for node in nodes:
        result = results.get(node.name)
        if why := _unreachable(result):
            hosts.append(HostReport(node.name, False, error=why))
        elif result is None or "checks" not in result:
            raise InputError(f"{node.name}: {(result or {}).get('msg', 'the task failed')}")
        else:
            hosts.append(reachable(node.name, result))
    return hosts


def preflight(*, inventory: str, nodes, ignore=(), fail_on: str = "fail", timeout: float = 30, forks: int = 8):
    """The preflight report of ``nodes`` (already selected), as the direct engine makes it."""
    from provision.results import Decision, HostReport, Report

    results = _run(inventory, nodes, {"provision.compute.preflight": {
        "ignore": list(ignore), "fail_on": fail_on, "timeout": timeout}}, forks=forks)

    def reachable(name: str, result: dict) -> HostReport:
        d = result.get("decision")
        decision = Decision(d["virt_type"], d["cpu_mode"], tuple(d["reasons"]), tuple(d.get("cpu_models", ())),
                            d.get("plugin", "")) if d else None
        return HostReport(name, True, decision, _checks(result))

    return Report(tuple(_host_reports(nodes, results, reachable))).with_groups(nodes)


def apply(*, inventory: str, nodes, check: bool = False, diff: bool = False, ignore=(), force: bool = False,
          remedies: bool = True, timeout: float = 120, forks: int = 8):
    """The apply of ``nodes`` as the direct engine makes it: ``(each node's result, the exit code, the
    diff)``, which :func:`provision.pipeline.apply` returns as its ``Applied``."""
    from provision.stages.apply import NodeApply, Step, exit_code

    results = _run(inventory, nodes, {"provision.compute.apply": {
        "ignore": list(ignore), "force": force, "remedies": remedies, "timeout": timeout}}, forks=forks,
        check=check, diff=diff)
    done, text = [], ""
    for node in nodes:
        result = results.get(node.name)
        if why := _unreachable(result):
            done.append(NodeApply(node.name, False, error=why))
            continue
        assert result is not None
        report = result.get("report")
        if report is None:
            raise InputError(f"{node.name}: {result.get('msg', 'the task failed')}")
        steps = tuple(Step(s["kind"], s["target"], s["action"], s.get("why") or "", s.get("seconds"), s.get("diff") or "")
                      for s in report["steps"])
        done.append(NodeApply(node.name, report["reachable"], steps, report.get("error") or "",
                              tuple(report.get("recovered") or ()), report.get("seconds") or 0.0,
                              tuple(report.get("not_restored") or ())))
        text += (result.get("diff") or {}).get("prepared", "")
    code = max(exit_code(done, check=check), 1 if any(r.get("failed") for r in results.values()) else 0)
    return done, code, text


def verify(*, inventory: str, nodes, timeout: float = 30, forks: int = 8):
    """The drift report of ``nodes``, as the direct engine makes it."""
    from provision.results import HostReport, Report

    results = _run(inventory, nodes, {"provision.compute.verify": {"timeout": timeout}}, forks=forks)
    hosts = _host_reports(nodes, results, lambda name, result: HostReport(name, True, None, _checks(result)))
    return Report(tuple(hosts), schema="provision.verify/1").with_groups(nodes)
