"""Preflight: gather each node's facts, run every plugin's checks, decide virt_type."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from provision.errors import InputError
from provision.facts import Facts
from provision.plugins import Hooks, default_hooks
from provision.remote.hosts import Node
from provision.remote.probe import Unreachable, gather_facts
from provision.results import CheckResult, HostReport, Report


def resolve_ignore(ignore: Iterable[str], catalog: dict[str, str]) -> frozenset[str]:
    """Check ids named by ``--ignore`` (``all`` for every one); an unknown id is an InputError."""
    ids = {i.strip() for item in ignore for i in item.split(",") if i.strip()}
    if "all" in ids:
        return frozenset(catalog)
    unknown = sorted(ids - set(catalog))
    if unknown:
        raise InputError(f"--ignore: unknown check id {', '.join(unknown)}; known ids: {', '.join(catalog)}")
    return frozenset(ids)


def evaluate(facts: Facts, settings: dict[str, Any], *, hooks: Hooks, ignore: frozenset[str] = frozenset()):
    """The checks and the decision for facts already gathered: pure, no node is contacted."""
    results: list[CheckResult] = []
    for result in hooks.checks(facts, settings):
        results.append(result.ignored() if result.status == "fail" and result.id in ignore else result)
    return tuple(results), hooks.virt_decision(facts, settings)


def check_host(node: Node, *, hooks: Hooks, timeout: float, ignore: frozenset[str],
               functional: float | None = None, settings: Callable[[], dict[str, Any]] | None = None,
               remedies: bool = False, settings_probes: bool = True) -> HostReport:
    """One node: one probe round trip, bounded by ``timeout``, then pure evaluation. With ``functional``
    (one boot's time limit), the canary is put on the node first and the plugins' functional operations
    join the probe, which may then take two boots longer. ``settings``, when given, is called once the
    facts are in (filling defaults overlaps the round trip). ``remedies``: the plugins' remedies for the
    failing checks come with the report. ``settings_probes``: the operations the node's settings name
    (:func:`~provision.hookspecs.provision_probe_settings`) are gathered in a second round trip (off
    where only the decision is wanted: they never change it)."""
    start = time.monotonic()
    operations = hooks.probe_operations
    if functional is not None:
        from provision.guests.canary import on_node

        operations = hooks.functional_operations(on_node(node.spec, timeout=timeout, boot_timeout=functional))
        timeout += 2 * functional + 5
    try:
        facts = gather_facts(node.spec, operations, timeout=timeout)
    except Unreachable as exc:
        return HostReport(node.name, False, error=str(exc), seconds=time.monotonic() - start)
    seconds = time.monotonic() - start
    values = settings() if settings else node.settings
    if settings_probes and (extra := hooks.settings_operations(values)):  # what this node's settings name (its Ceph monitors)
        try:
            more = gather_facts(node.spec, extra, timeout=max(1.0, timeout - seconds))
        except Unreachable as exc:
            more = Facts({key: {"error": str(exc)} for key in extra})
        facts = Facts({**facts, **{k: v for k, v in more.items() if k != "_probe"}})
        seconds = time.monotonic() - start
    checks, decision = evaluate(facts, values, hooks=hooks, ignore=ignore)
    fixes: tuple = ()
    if remedies:
        try:
            fixes = tuple(hooks.remedies(facts, values, [c for c in checks if c.status == "fail" or
                                                         c.status == "warn" and c.id not in ignore]))
        except Exception:
            fixes = ()
    return HostReport(node.name, True, decision, checks, seconds=seconds, remedies=fixes)


def preflight(
    *,
    nodes: list[Node],
    hooks: Hooks | None = None,
    forks: int = 8,
    timeout: float = 30,
    ignore: Iterable[str] = (),
    on_done: Callable[[HostReport], None] | None = None,
    functional: float | None = None,
    meanwhile: Callable[[], object] | None = None,
    remedies: bool = False,
    settings_probes: bool = True,
) -> Report:
    """Check every node, ``forks`` at a time; the report keeps the nodes' order. ``functional``: also
    boot the canary on each node, each boot bounded by that many seconds (``preflight --functional``).

    The probes start first; the settings of nodes without an inventory get their defaults meanwhile
    (hooks get validated settings, defaults filled, with or without -i), so the two overlap; then
    ``meanwhile()`` runs (the CLI loads its report writer), before the nodes' answers are awaited.
    ``remedies``: each host's report carries the plugins' remedies for its failing checks (apply's gate)."""
    from concurrent.futures import Future

    from provision.parallel import FanOut
    from provision.stages.defaults import with_defaults

    hooks = hooks or default_hooks()
    ignored = resolve_ignore(ignore, hooks.check_catalog)
    _ = hooks.probe_operations  # plugin clashes are refused before any node is contacted
    filled: Future = Future()

    def one(index: int) -> HostReport:
        report = check_host(nodes[index], hooks=hooks, timeout=timeout, ignore=ignored, functional=functional,
                            settings=lambda: filled.result()[index].settings, remedies=remedies,
                            settings_probes=settings_probes)
        if on_done:
            on_done(report)
        return report

    fan = FanOut(one, range(len(nodes)), forks=forks)
    try:
        filled.set_result(with_defaults(nodes, hooks=hooks))
        if meanwhile:
            meanwhile()
    except BaseException as exc:  # the workers waiting on the settings get the same error
        if not filled.done():
            filled.set_exception(exc)
        fan.stop()
        raise
    return Report(tuple(fan.results()))


INTERNAL_ERROR_EXIT = 4  # a plugin raised (as pytest's INTERNAL_ERROR; 3 is apply --check's "changes pending")


def exit_code(report: Report, *, fail_on: str = "fail", ignore: Iterable[str] = ()) -> int:
    """0 when nothing fails, 1 when a check fails (or warns, with ``fail_on='warn'``), 4 when a plugin
    raised instead of answering."""
    from provision.checks import INTERNAL_ERROR

    if any(INTERNAL_ERROR in c.evidence for h in report.hosts for c in h.checks):
        return INTERNAL_ERROR_EXIT
    bad = {"fail", "warn"} if fail_on == "warn" else {"fail"}
    ignored = set(ignore)
    for host in report.hosts:
        if not host.reachable:
            return 1
        for check in host.checks:
            if check.status in bad and not ("all" in ignored or check.id in ignored):
                return 1
    return 0
