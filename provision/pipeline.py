"""provision as a library: the operations the CLI runs, each returning the report the CLI prints.

The command line only parses options and prints; everything between an inventory and a report is
here, so a Python program, an Ansible module or a test runs exactly what ``provision`` runs::

    from provision import pipeline

    report = pipeline.preflight(inventory="inventories/example", limit="compute")
    print(report.as_dict()["summary"])              # {'pass': ..., 'warn': ..., 'fail': ..., 'skip': ...}
    plan = pipeline.apply(inventory="site.yml", check=True)
    print(plan.exit_code, [s.target for r in plan.results for s in r.steps if s.action != "unchanged"])

Every function takes the inventory (anything ``ansible -i`` takes; None: the local node, or ``hosts``
as testinfra host specs), ``limit`` (an Ansible host pattern), ``forks`` and ``timeout`` as the CLI
does. Bad input raises :class:`provision.errors.InputError` (the CLI's exit 2), a failure on a node is
in the report, and an inventory's warnings go to ``warn`` (the CLI prints them on stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.remote.hosts import Node
from provision.results import Report

Warn = Callable[[str], None]


def select(*, inventory: str | None = None, limit: str | None = None, hosts: Iterable[str] = (),
           warn: Warn | None = None, nodes: Sequence[Node] = ()) -> list[Node]:
    """The nodes to act on, validated before any is contacted; the inventory's warnings go to ``warn``.
    ``nodes``: these, already made (an Ansible action plugin makes its host's from Ansible's variables)."""
    if nodes:
        return list(nodes)
    from provision.inventory.select import select_nodes
    from provision.plugins import default_hooks

    selection = select_nodes(inventory=inventory, limit=limit, hosts=list(hosts), hooks=default_hooks())
    for warning in selection.warnings:
        if warn:
            warn(warning)
    return selection.nodes


def preflight(*, inventory: str | None = None, limit: str | None = None, hosts: Iterable[str] = (),
              nodes: Sequence[Node] = (),
              forks: int = 8, timeout: float = 30, ignore: Iterable[str] = (), functional: float | None = None,
              on_start: Callable[[int], None] | None = None, on_done: Callable | None = None,
              meanwhile: Callable[[], object] | None = None, warn: Warn | None = None, engine: str = "direct",
              fail_on: str = "fail") -> Report:
    """Check every node and decide ``kvm`` or ``qemu`` (``provision preflight``). ``functional``: also
    boot the canary on each node, each boot bounded by that many seconds. ``on_start(n)`` before the n
    nodes are contacted, ``on_done(host_report)`` as each is done, ``meanwhile()`` while they answer."""
    from provision.node import PROBE
    from provision.remote.hosts import parse_host_spec
    from provision.remote.session import sessions
    from provision.stages.preflight import preflight as run

    if engine == "ansible":  # Ansible reaches the nodes, with the provision.compute collection's task
        from provision.engines import ansible_run

        nodes = select(inventory=inventory, limit=limit, hosts=hosts, warn=warn, nodes=nodes)
        return ansible_run.preflight(inventory=inventory or "", nodes=nodes, ignore=tuple(ignore), fail_on=fail_on,
                                     timeout=timeout, forks=forks)
    with sessions() as held:  # the probe, and the settings' probes where plugins ask for them: one connection
        if inventory is None and not hosts and not nodes:  # the local node: its Python starts meanwhile
            held.warm(parse_host_spec("local://"), PROBE, timeout=timeout)
        nodes = select(inventory=inventory, limit=limit, hosts=hosts, warn=warn, nodes=nodes)
        if on_start:
            on_start(len(nodes))
        return run(nodes=nodes, forks=forks, timeout=timeout, ignore=ignore, on_done=on_done, functional=functional,
                   meanwhile=meanwhile).with_groups(nodes)


@dataclass(frozen=True)
class Rendered:
    """What ``render`` made: the files of each node (in memory), how many were written into ``out``,
    and the diff against the nodes (``diff=True``)."""

    nodes: list[Node]
    files: dict[str, list] | None
    written: int | None = None
    diff: str = ""


def render(*, inventory: str | None = None, limit: str | None = None, out: Path | str | None = None,
           diff: bool = False, forks: int = 8, timeout: float = 30, warn: Warn | None = None) -> Rendered:
    """Render each node's configuration (``provision render``): into ``out/<host>/`` with its manifest,
    and/or as a diff against the files on each node. ``timeout`` bounds a node (for ``diff`` and the
    decisions of ``virt_type: auto``) and the wait for another render into ``out``."""
    from provision.remote.session import sessions

    with sessions():  # a node probed for its decision and read for --diff: one connection
        return _render(inventory, limit, out, diff, forks, timeout, warn)


def _render(inventory, limit, out, diff, forks, timeout, warn) -> Rendered:
    from provision.errors import Unreachable
    from provision.plugins import default_hooks
    from provision.stages.render import diff_against_nodes, prepare, render_all
    from provision.stages.tree import render_tree

    hooks = default_hooks()
    nodes, decisions = prepare(select(inventory=inventory, limit=limit, warn=warn), hooks=hooks, forks=forks,
                               timeout=timeout)
    rendered = render_all(nodes=nodes, decisions=decisions, hooks=hooks) if diff or out is None else None
    written = None
    if out is not None:
        written = render_tree(Path(out), nodes=nodes, decisions=decisions, hooks=hooks, rendered=rendered,
                              protected=[Path(inventory)] if inventory else [], wait=timeout)
    text = ""
    if diff:
        assert rendered is not None
        try:
            text = diff_against_nodes(rendered, nodes, timeout=timeout, forks=forks)
        except Unreachable as exc:
            raise Unreachable(f"cannot read the node's files for --diff: {exc}") from None
    return Rendered(nodes, rendered, written, text)


@dataclass(frozen=True)
class Applied:
    """An apply: each node's result in the inventory's order, its exit code (0 converged, 1 a failure,
    3 changes pending with ``check``), the drift that the verification after it found, and the diffs."""

    results: list = field(default_factory=list)
    check: bool = False
    exit_code: int = 0
    drift: list[str] | None = None  # None: not verified (nothing changed, or --check); [] verified, or unreadable
    diff: str = ""  # the files' unified diff against the nodes, as they were before (diff=True)
    object_diff: str = ""  # each libvirt object's diff (diff=True)
    nodes: tuple = ()  # the selected nodes, in the inventory's order

    def report(self) -> Report:
        """The apply as a report of checks, one per step (for ``-o html``)."""
        from provision.stages.apply import apply_report

        return apply_report(self.results, check=self.check).with_groups(self.nodes)

    def as_dict(self) -> dict:
        from provision.stages.apply import to_json

        return to_json(self.results, check=self.check)


def _prepared(inventory, limit, forks, timeout, ignore, warn, *, check=True, remedies=False, nodes=()):
    """The selected nodes, those that pass the preflight gate with their rendered files, libvirt objects
    and node steps, the refused ones as results, and each node's remedy steps. With ``remedies``, a node
    whose failing checks its plugins' remedies fix has them carried out first (with ``check``, only
    planned), is probed again, and passes the gate on its new facts."""
    from provision.plugins import default_hooks
    from provision.stages.apply import gate, node_steps_for, objects_for
    from provision.stages.defaults import with_defaults
    from provision.stages.render import render_all

    hooks = default_hooks()
    _ = hooks.libvirt_kinds  # two plugins describing one kind are refused before any node is contacted
    nodes = with_defaults(select(inventory=inventory, limit=limit, warn=warn, nodes=nodes), hooks=hooks)
    passed, decisions, refused, fixes = gate(nodes=nodes, hooks=hooks, forks=forks, timeout=timeout, ignore=ignore,
                                             remedies=remedies)
    remedied: dict[str, tuple] = {}
    if fixes:
        passed, decisions, refused, remedied = _remedy(passed, decisions, refused, fixes, hooks=hooks, forks=forks,
                                                       timeout=timeout, ignore=ignore, check=check)
    rendered = render_all(nodes=passed, decisions=decisions, hooks=hooks)
    objects = objects_for(nodes=passed, rendered=rendered, decisions=decisions, hooks=hooks)
    steps = node_steps_for(nodes=passed, decisions=decisions, hooks=hooks, rendered=rendered)
    return nodes, passed, rendered, {"objects": objects, "steps": steps,
                                     "kinds": tuple(hooks.libvirt_kinds.values())}, refused, remedied


def _remedy(passed, decisions, refused, fixes, *, hooks, forks, timeout, ignore, check):
    """Carry out the remedies of the nodes in ``fixes`` (``check``: plan them), then gate those nodes
    again on their new facts. A node whose remedies fail, or whose checks still fail, is refused with
    its remedy steps."""
    from dataclasses import replace

    from provision.parallel import fan_out
    from provision.stages.apply import NodeApply, Step, gate
    from provision.stages.remedies import run

    fixing = [n for n in passed if n.name in fixes]
    outcomes = dict(zip([n.name for n in fixing], fan_out(
        lambda n: run(n, fixes[n.name], check=check, timeout=timeout), fixing, forks=forks), strict=True))
    remedied = {name: tuple(Step(s["kind"], s["target"], s["action"], s.get("why") or "", s.get("seconds"))
                            for s in steps) for name, (steps, _) in outcomes.items()}
    failed = {name for name, (_, error) in outcomes.items() if error}
    refused = refused + [NodeApply(name, True, remedied[name], outcomes[name][1]) for name in sorted(failed)]
    done = [n for n in fixing if n.name not in failed]
    passed = [n for n in passed if n.name not in failed and (check or n.name not in fixes)]
    if done and not check:  # the node is probed again: the gate is evaluated on what it is now
        again, new, still, _ = gate(nodes=done, hooks=hooks, forks=forks, timeout=timeout, ignore=ignore, hint=False)
        passed += again
        decisions = {**decisions, **new}
        refused += [replace(r, steps=remedied[r.host], error=r.error.replace(
            "refused by preflight", "after its remedies, still refused by preflight", 1)) for r in still]
    return passed, decisions, refused, remedied


def apply(*, inventory: str | None = None, limit: str | None = None, nodes: Sequence[Node] = (), check: bool = False,
          diff: bool = False,
          forks: int = 8, timeout: float = 120, ignore: Iterable[str] = (), force: bool = False,
          confirm_timeout: float = 60, on_start: Callable[[int], None] | None = None, on_done: Callable | None = None,
          warn: Warn | None = None, remedies: bool = True, engine: str = "direct") -> Applied:
    """Make each node match its rendered configuration, then verify it (``provision apply``); with
    ``check``, only plan. A node whose failing checks its plugins' remedies fix gets them first (the
    packages installed, modules loaded, daemons started: ``remedies=False`` or the inventory's
    ``provision.remedies: false`` keeps them off); a node that still fails the preflight gate is
    refused, changing nothing."""
    given = nodes
    if engine == "ansible":
        from provision.engines import ansible_run

        chosen = select(inventory=inventory, limit=limit, warn=warn, nodes=given)
        results, code, text = ansible_run.apply(inventory=inventory or "", nodes=chosen, check=check, diff=diff,
                                                ignore=tuple(ignore), force=force, remedies=remedies, timeout=timeout,
                                                forks=forks)
        return Applied(results, check, code, None, text, "", tuple(chosen))
    from provision.remote.session import sessions

    with sessions():  # one connection per node for its probes, remedies, agent and verification
        return _apply(inventory, limit, given, check, diff, forks, timeout, tuple(ignore), force, confirm_timeout,
                      on_start, on_done, warn, remedies)


def _apply(inventory, limit, given, check, diff, forks, timeout, ignore, force, confirm_timeout, on_start, on_done,
           warn, remedies) -> Applied:
    from dataclasses import replace

    from provision.stages.apply import apply_nodes, exit_code, object_diffs
    from provision.stages.render import diff_against_nodes

    selected, ready, rendered, plan, refused, remedied = _prepared(inventory, limit, forks, timeout, ignore,
                                                                    warn, check=check, remedies=remedies, nodes=given)
    text = diff_against_nodes(rendered, ready, timeout=timeout, forks=forks) if diff else ""
    if on_start:
        on_start(len(ready))
    results = apply_nodes(nodes=ready, rendered=rendered, **plan, check=check, forks=forks, timeout=timeout,
                          force=force, diff=diff, on_done=on_done, confirm_timeout=confirm_timeout)
    order = {n.name: i for i, n in enumerate(selected)}
    results = [replace(r, steps=remedied[r.host] + r.steps) if r.host in remedied else r for r in results]
    results = sorted([*refused, *results], key=lambda r: order[r.host])
    code = exit_code(results, check=check)
    drift = None
    changed = [n for n in ready if any(r.host == n.name and r.pending for r in results)]
    if not check and code == 0 and changed:  # apply ends with verify: a changed node must now read as converged
        after = apply_nodes(nodes=changed, rendered=rendered, **plan, check=True, forks=forks, timeout=timeout)
        drift = [f"{r.host}: {s.target} ({s.action})" for r in after for s in r.steps if s.action != "unchanged"]
        if drift or exit_code(after, check=True):
            code = 1
        else:
            drift = None
    return Applied(results, check, code, drift, text, object_diffs(results) if diff else "", tuple(selected))


def verify(*, inventory: str | None = None, limit: str | None = None, nodes: Sequence[Node] = (), forks: int = 8,
           timeout: float = 30, warn: Warn | None = None, engine: str = "direct") -> Report:
    """Each node's drift from its rendered configuration, as checks (``provision verify``); changes nothing."""
    from provision.remote.session import sessions
    from provision.stages.apply import apply_nodes, verify_report

    if engine == "ansible":
        from provision.engines import ansible_run

        return ansible_run.verify(inventory=inventory or "", nodes=select(inventory=inventory, limit=limit, warn=warn,
                                                                          nodes=nodes), timeout=timeout, forks=forks)
    with sessions():
        selected, ready, rendered, plan, refused, _ = _prepared(inventory, limit, forks, timeout, ("all",), warn,
                                                                nodes=nodes)
        return verify_report(refused + apply_nodes(nodes=ready, rendered=rendered, **plan, check=True, forks=forks,
                                                   timeout=timeout)).with_groups(selected)
