"""``provision apply`` and ``provision verify``: make each node's managed files match what ``render``
produces, through the apply agent (provision/node/agent.py and its parts), one round trip per node."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.remote.hosts import Node
from provision.results import CheckResult, HostReport, Report, Status
from provision.stages.render import RenderedFile

CHANGES = ("create", "update", "remove", "release", "install", "load", "start", "restart")  # remedies' last four


@dataclass(frozen=True)
class Step:
    """One managed object on one node: what apply does (or did) to it, and why."""

    kind: str  # file, network, secret, pool
    target: str
    action: str  # create, update, unchanged, remove, release, failed, rolled back
    why: str = ""
    seconds: float | None = None  # what carrying it out took (None: nothing was done)
    diff: str = ""  # with --diff, a libvirt object's fields as they are against as rendered


@dataclass(frozen=True)
class NodeApply:
    host: str
    reachable: bool
    steps: tuple[Step, ...] = ()
    error: str = ""
    recovered: tuple[str, ...] = ()  # files put back from a run that was killed midway
    seconds: float = 0.0
    not_restored: tuple[str, ...] = ()  # undos that failed, each with its reason; the next apply retries them

    @property
    def pending(self) -> bool:
        return any(s.action in CHANGES for s in self.steps)

    @property
    def failed(self) -> bool:
        return not self.reachable or bool(self.error) or any(s.action in ("failed", "rolled back") for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "reachable": self.reachable, "error": self.error or None,
                "recovered": list(self.recovered), "not_restored": list(self.not_restored),
                "seconds": round(self.seconds, 3),
                "steps": [{"kind": s.kind, "target": s.target, "action": s.action, "why": s.why, "seconds": s.seconds,
                           **({"diff": s.diff} if s.diff else {})} for s in self.steps]}


def agent_program(spec: dict[str, Any]) -> str:
    """The apply agent's bundle (provision/node/), to run ``main(spec)`` on a node."""
    from provision.node import AGENT, bundle

    return bundle(AGENT, spec)


def run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def libvirt_objects(ctx, files: list[RenderedFile], *, hooks) -> list[dict[str, Any]]:
    """The libvirt networks, secrets and pools that the plugins name among their rendered files
    (:func:`~provision.hookspecs.provision_apply_objects`), in the order they are defined, each as
    the agent takes it: kind, label (name, or a secret's UUID or usage), XML and what the plugin adds."""
    import xml.etree.ElementTree as ET

    kinds = hooks.libvirt_kinds
    order = list(kinds)
    by_target = {f.target: f for f in files}
    found, problems, named = [], [], {}
    for obj in hooks.apply_objects(ctx, by_target):
        f = by_target.get(obj.file)
        if f is None or obj.kind not in kinds:
            problems.append(((), f"a plugin names {obj.file} as a libvirt {obj.kind}, but " + (
                "no plugin renders that file" if f is None else f"the kinds are {', '.join(order)}")))
            continue
        root = ET.fromstring(f.content)
        if root.tag != kinds[obj.kind].root:
            problems.append(((), f"{f.plugin} names {f.target} as a libvirt {obj.kind}, but its XML is a <{root.tag}>"))
            continue
        if f.target in named:
            problems.append(((), f"{f.target} is named as a libvirt object twice"))
            continue
        named[f.target] = True
        entry: dict[str, Any] = {"kind": obj.kind, "xml": f.content, "file": f.target, "plugin": f.plugin}
        if obj.build:
            entry["build"] = True
        if kinds[obj.kind].identity == "uuid":
            usage = root.find("usage")
            label = next((usage.findtext(t) for t in ("name", "target", "volume") if usage is not None
                          and usage.findtext(t)), "")
            entry.update(uuid=root.findtext("uuid") or "", usage=label, value_file=obj.value_file,
                         value_format=obj.value_format)
            entry["label"] = entry["uuid"] or label
        else:
            entry["name"] = entry["label"] = root.findtext("name") or root.get("name")  # <name> or name=""
        found.append(entry)
    problems += _folder_problems(ctx.settings, found, kinds)
    if problems:
        from provision.errors import SettingsError

        raise SettingsError(problems)
    return sorted(found, key=lambda o: order.index(o["kind"]))


def _folder_problems(settings: dict, objects: list[dict[str, Any]], kinds=None) -> list[tuple[tuple, str]]:
    """Pools, of any plugin, whose target folder is a system folder, or another pool's folder or inside
    it; each named by the setting that holds that folder (the first whose value it is)."""
    import xml.etree.ElementTree as ET

    from provision.api import BUILTIN_KINDS
    from provision.fields import folder_target_problem, nested_folders
    from provision.secrets import setting_paths

    kinds = kinds or {k.name: k for k in BUILTIN_KINDS}
    targets = []
    for o in objects:
        root = ET.fromstring(o["xml"])
        path = root.findtext("target/path")
        if o["kind"] in kinds and root.get("type") in kinds[o["kind"]].folder_types and path:
            targets.append((o["name"], path.rstrip("/") or "/"))
    where: dict[str, tuple] = {}
    for path, value in setting_paths(settings):
        where.setdefault(value.rstrip("/") or "/", path)
    problems = [(where.get(t, ()), f"pool {name!r} targets {t}: {problem}")
                for name, t in targets if (problem := folder_target_problem(t))]
    for outer, inner in nested_folders([t for _, t in targets]):
        (o_name, o_target), (i_name, i_target) = targets[outer], targets[inner]
        problems.append((where.get(i_target, ()), f"pool {i_name!r} targets {i_target}, which is pool {o_name!r}'s "
                                                  f"folder {o_target} or inside it"))
    return problems


def objects_for(*, nodes: list[Node], rendered: dict[str, list[RenderedFile]], decisions, hooks) -> dict[str, list[dict]]:
    """Each node's libvirt objects, from its rendered files; a plugin's mistake is an input error."""
    from provision.errors import InputError, SettingsError
    from provision.stages.render import node_context

    found, problems = {}, []
    for n in nodes:
        try:
            found[n.name] = libvirt_objects(node_context(n, decisions.get(n.name), hooks=hooks), rendered[n.name],
                                            hooks=hooks)
        except SettingsError as exc:
            problems += exc.lines(n.name, n.file_of)
    if problems:
        raise InputError("cannot apply:\n  " + "\n  ".join(problems))
    return found


def node_steps_for(*, nodes: list[Node], decisions, hooks, rendered: dict[str, list[RenderedFile]] | None = None
                   ) -> dict[str, list[dict]]:
    """Each node's node steps (:func:`~provision.hookspecs.provision_apply_node_steps`, given every file
    rendered for the node), as the agent takes them: name, the module's source, spec, guarded, phase."""
    from provision.stages.render import node_context

    sources: dict[str, str] = {}
    found = {}
    for n in nodes:
        files = {f.target: f for f in (rendered or {}).get(n.name, ())}
        steps = hooks.apply_node_steps(node_context(n, decisions.get(n.name), hooks=hooks), files)
        for step in steps:
            if step.agent not in sources:
                sources[step.agent] = Path(step.agent).read_text()
        found[n.name] = [{"name": s.name, "source": sources[s.agent], "spec": s.spec, "guarded": s.guarded,
                          "phase": s.phase} for s in steps]
    return found


def apply_node(node: Node, files: list[RenderedFile], objects: list[dict[str, Any]], *, check: bool, timeout: float,
               run: str, force: bool = False, diff: bool = False, steps: Sequence[dict] = (),
               confirm_timeout: float = 60, kinds: Sequence | None = None) -> NodeApply:
    """Plan (and unless ``check``, carry out) one node's libvirt objects and files, in one request (to the
    node's session within :class:`provision.remote.session.sessions`)."""
    from provision.node import AGENT
    from provision.remote.probe import Unreachable, run_bundle
    from provision.secrets import redact_line

    def redact(text: str) -> str:  # libvirt XML holds no secret value; a plugin's comment still might
        return "".join(redact_line(line) for line in text.splitlines(True))

    from provision.api import BUILTIN_KINDS

    table = {k.name: dataclasses.asdict(k) for k in (kinds or BUILTIN_KINDS)}
    spec = {"run": run, "check": check, "force": force, "diff": diff, "objects": objects, "steps": list(steps),
            "kinds": table,
            "confirm_timeout": confirm_timeout,
            "files": [{"target": f.target, "content": f.content, "mode": f.mode} for f in files]}
    start = time.monotonic()
    try:
        answer = run_bundle(node.spec, AGENT, spec, timeout=timeout)
    except Unreachable as exc:
        if check or not _guarded(steps):
            return NodeApply(node.name, False, error=str(exc), seconds=time.monotonic() - start)
        # the host network step may have cut the connection the agent answers on: its guard decides
        outcome = after_deadline(_fresh(node), run, timeout=timeout, wait=confirm_timeout,
                                 why=f"the connection was lost during apply ({exc})")
        return NodeApply(node.name, True, (), outcome or "the connection was lost during apply, but the node "
                         "confirmed the run", seconds=time.monotonic() - start)
    error = answer.get("error", "")
    rolled_back = False
    outcome = confirm_run(node, run, answer["confirm"], timeout=timeout) if answer.get("confirm") else ""
    if outcome:  # rolled back, or not known to be confirmed: every change of the run is reported so
        error, rolled_back = outcome, True
    reported = tuple(
        Step(s.get("kind", "file"), s["target"], "rolled back" if rolled_back and s["action"] in CHANGES else s["action"],
             s.get("why") or "", s.get("seconds"), redact(s.get("diff") or ""))
        for key in ("node_steps", "objects", "steps") for s in answer.get(key, ()))
    return NodeApply(node.name, True, reported, error, tuple(answer.get("recovered", ())),
                     time.monotonic() - start, tuple(answer.get("not_restored", ())))


def _fresh(node: Node):
    """The node's spec for a new SSH connection: no shared master connection, which may survive on a
    stale path after the host network changed."""
    from dataclasses import replace

    return replace(node.spec, control_path="none") if node.spec.control_path else node.spec


def confirm_run(node: Node, run: str, guard: dict[str, Any], *, timeout: float) -> str:
    """The guarded commit's second half: reach the node again on a new SSH connection (not the old one,
    which may survive on a stale path) and have it check its probes and disarm its rollback. ``""`` when
    confirmed; otherwise why not — and the node rolls back by itself at its deadline. After the deadline
    the controller reconnects to say whether the rollback happened."""
    from provision.remote.probe import Unreachable, run_program, within

    fresh = _fresh(node)
    # the node's clock said "now" when it armed the guard: the deadline is counted on this machine's
    deadline = time.monotonic() + guard["deadline"] - guard["now"]
    reason = ""
    while time.monotonic() < deadline:
        try:  # the node's probes take a few seconds at most; a connection that cannot be made fails sooner
            answer = within(lambda: run_program(fresh, agent_program({"mode": "confirm", "run": run}), timeout=12),
                            timeout=13, name=node.name)
        except Unreachable as exc:
            reason = f"the controller could not reach the node on a new connection: {exc}"
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        if answer.get("confirmed"):
            return ""
        if answer.get("rolled_back"):
            return _rolled_back(answer["rolled_back"])
        reason = answer.get("error") or repr(answer)
        time.sleep(0.5)
    return after_deadline(fresh, run, timeout=timeout, why=reason)


def after_deadline(fresh, run: str, *, timeout: float, why: str, wait: float = 0.0) -> str:
    """Past the guard's deadline (``wait`` seconds from now) the node rolls back by itself: reconnect
    and read what became of the run."""
    from provision.remote.probe import Unreachable, run_program, within

    reason = why
    time.sleep(wait)
    last = "no answer"
    until = time.monotonic() + max(15.0, min(timeout, 60.0))
    while time.monotonic() < until:
        try:
            answer = within(lambda: run_program(fresh, agent_program({"mode": "status", "run": run}), timeout=5),
                            timeout=6, name=fresh.name)
        except Unreachable as exc:
            last = f"unreachable: {exc}"
            time.sleep(1)
            continue
        if answer.get("rolled_back"):
            return _rolled_back(answer["rolled_back"], reason)
        if answer.get("confirmed"):
            return ""
        if answer.get("unknown"):
            return f"{reason}; the node has no record of run {run}: nothing of it was changed"
        last = "its rollback is still pending"
        time.sleep(0.5)  # the guard is about to act
    return f"not confirmed ({reason}); the node rolls back by itself, but after its deadline it says: {last}"


def _guarded(steps) -> bool:
    return any(s.get("guarded") for s in steps)


def _rolled_back(record: dict[str, Any], why: str = "") -> str:
    text = f"rolled back: {record['reason']}" + (f" ({why})" if why else "")
    if record.get("not_restored"):
        text += "; not restored: " + "; ".join(record["not_restored"])
    return text


def gate(*, nodes: list[Node], hooks, forks: int, timeout: float, ignore=(), remedies: bool = False,
         hint: bool = True):
    """Preflight each node once, before anything changes: its decision (for ``virt_type: auto``) and the
    gate. A node where a check fails (``kernel.nfs`` for an NFS pool, ``storage.iscsi`` for an iSCSI
    pool, ``libvirt.daemon``, ...) or that cannot be reached is refused, changing nothing; with
    ``remedies``, unless the plugins' live remedies fix every failing check (and the node's
    ``provision.remedies`` is not false). ``(nodes that passed, their decisions, the refused as
    results, the remedies of each node that passed only with them)``. ``hint``: a refusal says which
    failing checks remedies would have fixed, had they been on."""
    from provision.stages.preflight import preflight
    from provision.stages.remedies import refusal

    report = preflight(nodes=nodes, hooks=hooks, forks=forks, timeout=timeout, ignore=ignore,
                       remedies=remedies or hint)
    passed, decisions, refused, fixes = [], {}, [], {}
    for node, host in zip(nodes, report.hosts, strict=True):
        failing = [c for c in host.checks if c.status == "fail"]
        why = refusal(failing, host.remedies, enabled=remedies and node.settings.get("remedies", True))
        if not host.reachable:
            refused.append(NodeApply(node.name, False, error=host.error, seconds=host.seconds))
        elif why:
            refused.append(NodeApply(node.name, True, error=why, seconds=host.seconds))
        else:
            passed.append(node)
            decisions[node.name] = host.decision
            if failing:
                fixes[node.name] = [r for r in host.remedies if r.live]
    return passed, decisions, refused, fixes


def apply_nodes(*, nodes: list[Node], rendered: dict[str, list[RenderedFile]], objects: dict[str, list[dict]],
                check: bool, forks: int, timeout: float, force: bool = False, diff: bool = False, on_done=None,
                steps: dict[str, list[dict]] | None = None, confirm_timeout: float = 60,
                kinds: Sequence | None = None) -> list[NodeApply]:
    """Every node, ``forks`` at a time; a node that fails does not stop the others. ``on_done`` is called
    with each node's result as it comes (a progress bar)."""
    from provision.parallel import fan_out

    run = run_id()

    def one(node: Node) -> NodeApply:
        result = apply_node(node, rendered[node.name], objects[node.name], check=check, timeout=timeout, run=run, force=force,
                            diff=diff, steps=(steps or {}).get(node.name, ()), confirm_timeout=confirm_timeout,
                            kinds=kinds)
        if on_done:
            on_done(result)
        return result

    return fan_out(one, nodes, forks=forks)


def object_diffs(results: list[NodeApply]) -> str:
    """Each libvirt object's XML diff (``--diff``), node by node, as ``host:kind:label``."""
    return "".join(s.diff.replace("--- a/", f"--- a/{r.host}:").replace("+++ b/", f"+++ b/{r.host}:")
                   for r in results for s in r.steps if s.diff)


def exit_code(results: list[NodeApply], *, check: bool) -> int:
    """0 converged; 1 a step failed or a node was unreachable; 3 (with --check) changes are pending."""
    if any(r.failed for r in results):
        return 1
    if check and any(r.pending for r in results):
        return 3
    return 0


def _as_report(results: list[NodeApply], schema: str, checks_of) -> Report:
    """Apply results in the preflight report's format: an unreachable node stays unreachable, each other
    one gets ``checks_of(result)``."""
    hosts = [HostReport(r.host, False, error=r.error, seconds=r.seconds) if not r.reachable else
             HostReport(r.host, True, None, tuple(checks_of(r)), seconds=r.seconds) for r in results]
    return Report(tuple(hosts), schema=schema)


def _check_id(step: Step) -> str:
    return f"apply.{step.kind.replace('-', '_')}"


def verify_report(results: list[NodeApply]) -> Report:
    """Drift as checks (``apply.file``, ``apply.network``, ``apply.secret``, ``apply.pool``), in the
    preflight report's format."""

    def drift(r: NodeApply) -> list[CheckResult]:
        checks = []
        for s in r.steps:
            if s.action == "unchanged":
                checks.append(CheckResult(_check_id(s), "pass", f"{s.target} is as rendered", {"path": s.target}))
            elif s.action != "release":
                what = {"create": "is missing" if s.kind in ("file", "host-network") else "is not defined",
                        "update": f"differs ({s.why})",
                        "remove": "is no longer rendered",
                        }.get(s.action, s.why)
                checks.append(CheckResult(_check_id(s), "fail", f"{s.target} {what}", {"path": s.target}, "provision apply"))
        if r.error and not checks:
            checks.append(CheckResult("apply.file", "fail", r.error))
        return checks

    return _as_report(results, "provision.verify/1", drift)


def apply_report(results: list[NodeApply], *, check: bool) -> Report:
    """An apply as checks, one per step (``apply.file``, ``apply.network``, ...), for the reports that
    show checks (``-o html``): unchanged or done is pass, pending (``--check``) is warn, failed, rolled
    back or not done is fail; an undo that failed is a failure of its own."""

    def steps(r: NodeApply) -> list[CheckResult]:
        checks = []
        for s in r.steps:
            status: Status = ("pass" if s.action in ("unchanged", "release") or not check and s.action in CHANGES
                              else "warn" if s.action in CHANGES else "fail")
            verb = s.action if not check or s.action not in CHANGES else f"would {s.action}"
            checks.append(CheckResult(_check_id(s), status, f"{s.target}: {verb}" + (f" ({s.why})" if s.why else ""),
                                      {"path": s.target, "action": s.action}))
        checks += [CheckResult("apply.not_restored", "fail", p, {}, "provision apply (retries the undo)") for p in r.not_restored]
        if r.error and not any(c.status == "fail" for c in checks):
            checks.append(CheckResult("apply.error", "fail", r.error))
        return checks

    return _as_report(results, "provision.apply/1", steps)


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
        for problem in r.not_restored:
            lines.append(f"  NOT restored  {problem}")
        for s in r.steps:
            verb = f"would {s.action}" if check and s.action in CHANGES else s.action
            lines.append(f"  {verb:<12} {s.target}" + (f"  ({s.why})" if s.why else ""))
        if r.reachable and r.error:
            lines.append(f"  error: {r.error}")
    counts = summary(results)
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return "\n".join(lines) + "\n"
