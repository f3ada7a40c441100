"""``provision apply`` and ``provision verify``: make each node's managed files match what ``render``
produces, through the apply agent (provision/apply_agent.py), one round trip per node."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from provision.hosts import Node
from provision.render import RenderedFile
from provision.results import CheckResult, HostReport, Report

CHANGES = ("create", "update", "remove", "release")


@dataclass(frozen=True)
class Step:
    """One managed object on one node: what apply does (or did) to it, and why."""

    kind: str  # file, network, secret, pool
    target: str
    action: str  # create, update, unchanged, remove, release, failed, rolled back
    why: str = ""
    seconds: float | None = None  # what carrying it out took (None: nothing was done)


@dataclass(frozen=True)
class NodeApply:
    host: str
    reachable: bool
    steps: tuple[Step, ...] = ()
    error: str = ""
    recovered: tuple[str, ...] = ()  # files put back from a run that was killed midway
    seconds: float = 0.0

    @property
    def pending(self) -> bool:
        return any(s.action in CHANGES for s in self.steps)

    @property
    def failed(self) -> bool:
        return not self.reachable or bool(self.error) or any(s.action in ("failed", "rolled back") for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "reachable": self.reachable, "error": self.error or None,
                "recovered": list(self.recovered), "seconds": round(self.seconds, 3),
                "steps": [{"kind": s.kind, "target": s.target, "action": s.action, "why": s.why, "seconds": s.seconds}
                          for s in self.steps]}


@cache
def agent_source() -> str:
    return Path(__file__).with_name("apply_agent.py").read_text()


def agent_program(spec: dict[str, Any]) -> str:
    return f"{agent_source()}\nmain({spec!r})\n"


def run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


ORDER = {"network": 0, "secret": 1, "pool": 2}  # what each later kind may refer to comes first


def libvirt_objects(files: list[RenderedFile]) -> list[dict[str, Any]]:
    """The libvirt networks, secrets and pools among the rendered files (their XML under
    LIBVIRT_DIR), in the order they are defined; what a plugin adds in ``apply`` comes along
    (a secret's value file and its format, a pool to build)."""
    import xml.etree.ElementTree as ET

    from provision.render import LIBVIRT_DIR

    found = []
    for f in files:
        if not f.target.startswith(LIBVIRT_DIR + "/"):
            continue
        root = ET.fromstring(f.content)
        if root.tag not in ORDER:
            continue
        obj: dict[str, Any] = {"kind": root.tag, "xml": f.content, "file": f.target, **f.apply}
        if root.tag == "secret":
            obj.update(uuid=root.findtext("uuid") or "", usage=f.apply.get("secret_usage", ""))
            obj["label"] = obj["uuid"] or obj["usage"]
        else:
            obj["name"] = obj["label"] = root.findtext("name")
        found.append(obj)
    return sorted(found, key=lambda o: ORDER[o["kind"]])


def apply_node(node: Node, files: list[RenderedFile], *, check: bool, timeout: float, run: str,
               force: bool = False) -> NodeApply:
    """Plan (and unless ``check``, carry out) one node's libvirt objects and files, in one round trip."""
    from provision.probe import Unreachable, run_program, within

    spec = {"run": run, "check": check, "force": force, "objects": libvirt_objects(files),
            "files": [{"target": f.target, "content": f.content, "mode": f.mode} for f in files]}
    start = time.monotonic()
    try:
        answer = within(lambda: run_program(node.spec, agent_program(spec), timeout=timeout), timeout=timeout,
                        name=node.name)
    except Unreachable as exc:
        return NodeApply(node.name, False, error=str(exc), seconds=time.monotonic() - start)
    steps = tuple(Step(s["kind"], s["target"], s["action"], s.get("why") or "", s.get("seconds"))
                  for s in answer.get("objects", ())) \
        + tuple(Step("file", s["target"], s["action"], s.get("why", ""), s.get("seconds")) for s in answer.get("steps", ()))
    return NodeApply(node.name, True, steps, answer.get("error", ""), tuple(answer.get("recovered", ())),
                     time.monotonic() - start)


def gate(*, nodes: list[Node], hooks, forks: int, timeout: float, ignore=()):
    """Preflight each node once, before anything changes: its decision (for ``virt_type: auto``) and the
    gate. A node where a check fails (``kernel.nfs`` for an NFS pool, ``storage.iscsi`` for an iSCSI
    pool, ``libvirt.daemon``, ...) or that cannot be reached is refused, changing nothing.
    ``(nodes that passed, their decisions, the refused as results)``."""
    from provision.preflight import preflight

    report = preflight(nodes=nodes, hooks=hooks, forks=forks, timeout=timeout, ignore=ignore)
    passed, decisions, refused = [], {}, []
    for node, host in zip(nodes, report.hosts):
        failing = [c for c in host.checks if c.status == "fail"]
        if not host.reachable:
            refused.append(NodeApply(node.name, False, error=host.error, seconds=host.seconds))
        elif failing:
            refused.append(NodeApply(node.name, True, error="refused by preflight, nothing was changed: " + "; ".join(
                f"{c.id}: {c.message}" for c in failing), seconds=host.seconds))
        else:
            passed.append(node)
            decisions[node.name] = host.decision
    return passed, decisions, refused


def apply_nodes(*, nodes: list[Node], rendered: dict[str, list[RenderedFile]], check: bool, forks: int,
                timeout: float, force: bool = False, on_done=None) -> list[NodeApply]:
    """Every node, ``forks`` at a time; a node that fails does not stop the others. ``on_done`` is called
    with each node's result as it comes (a progress bar)."""
    from concurrent.futures import ThreadPoolExecutor

    run = run_id()

    def one(node: Node) -> NodeApply:
        result = apply_node(node, rendered[node.name], check=check, timeout=timeout, run=run, force=force)
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        return list(pool.map(one, nodes))


def exit_code(results: list[NodeApply], *, check: bool) -> int:
    """0 converged; 1 a step failed or a node was unreachable; 3 (with --check) changes are pending."""
    if any(r.failed for r in results):
        return 1
    if check and any(r.pending for r in results):
        return 3
    return 0


def verify_report(results: list[NodeApply]) -> Report:
    """Drift as checks (``apply.file``, ``apply.network``, ``apply.secret``, ``apply.pool``), in the
    preflight report's format."""
    hosts = []
    for r in results:
        if not r.reachable:
            hosts.append(HostReport(r.host, False, error=r.error, seconds=r.seconds))
            continue
        checks = []
        for s in r.steps:
            if s.action == "unchanged":
                checks.append(CheckResult(f"apply.{s.kind}", "pass", f"{s.target} is as rendered", {"path": s.target}))
            elif s.action == "release":
                continue
            else:
                what = {"create": "is missing" if s.kind == "file" else "is not defined", "update": f"differs ({s.why})",
                        "remove": "is no longer rendered",
                        }.get(s.action, s.why)
                checks.append(CheckResult(f"apply.{s.kind}", "fail", f"{s.target} {what}", {"path": s.target},
                                          "provision apply"))
        if r.error and not checks:
            checks.append(CheckResult("apply.file", "fail", r.error))
        hosts.append(HostReport(r.host, True, None, tuple(checks), seconds=r.seconds))
    return Report(tuple(hosts), schema="provision.verify/1")


def summary(results: list[NodeApply]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        for s in r.steps:
            counts[s.action] = counts.get(s.action, 0) + 1
    counts["unreachable"] = sum(1 for r in results if not r.reachable)
    return counts


def to_json(results: list[NodeApply], *, check: bool) -> dict[str, Any]:
    return {"schema": "provision.apply/1", "check": check, "hosts": [r.as_dict() for r in results],
            "summary": summary(results)}


def to_text(results: list[NodeApply], *, check: bool) -> str:
    """One line per step, then a summary; plain text (no markup is read from targets or reasons)."""
    lines = []
    for r in results:
        head = f"{r.host}: " + ("unreachable: " + r.error if not r.reachable else f"{r.seconds:.2f} s")
        lines.append(head)
        for path in r.recovered:
            lines.append(f"  recovered  {path} (put back from a run that was interrupted)")
        for s in r.steps:
            verb = {"create": "would create", "update": "would update", "remove": "would remove",
                    "release": "would release"}.get(s.action, s.action) if check else s.action
            lines.append(f"  {verb:<12} {s.target}" + (f"  ({s.why})" if s.why else ""))
        if r.reachable and r.error:
            lines.append(f"  error: {r.error}")
    counts = summary(results)
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return "\n".join(lines) + "\n"
