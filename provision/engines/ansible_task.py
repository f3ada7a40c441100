"""provision inside an Ansible task: what the provision.compute collection's action plugins run on the
controller, for one host, with the host's ``provision`` variable as Ansible resolved it and every node
program sent through Ansible's own connection (the collection's ``run`` module). The collection holds
no logic of provision's: it calls :mod:`provision.pipeline` through here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.errors import InputError, Unreachable

Runner = Callable[[str], dict]
# preflight's fact is the host's provision variable with these two added (Ansible injects facts as
# variables, so a fact of another shape would replace the settings): they are never settings
FACT_KEYS = ("decision", "checks")


def node_for(name: str, settings: Any, *, source: str = "Ansible's variables"):
    """The :class:`~provision.remote.hosts.Node` of host ``name`` with its validated settings, or an
    :class:`InputError` naming the host and each bad field."""
    from provision.errors import SettingsError
    from provision.plugins import default_hooks
    from provision.remote.hosts import HostSpec, Node
    from provision.secrets import secret_file_problems
    from provision.settings import validate_settings

    hooks = default_hooks()
    if isinstance(settings, dict):
        settings = {k: v for k, v in settings.items() if k not in FACT_KEYS}
    checked, problems = validate_settings(hooks.settings_model, settings if settings is not None else {})
    if checked is not None:
        problems = hooks.validate_settings(checked) + secret_file_problems(checked)
    if problems:
        raise InputError("invalid settings:\n  " + "\n  ".join(SettingsError(problems).lines(name, lambda path: source)))
    # reached only through Ansible's connection (the runner): the spec names it, it connects nothing
    return Node(HostSpec(name=name, scheme="ansible", address=name), (), checked or {})


def _through(runner: Runner, call):
    from provision.remote.probe import through

    with through(runner):
        return call()


def preflight(name: str, settings: Any, runner: Runner, *, ignore=(), fail_on: str = "fail",
              timeout: float = 30) -> dict[str, Any]:
    """The host's preflight as the module's result: its decision and checks, ``failed`` as the CLI's
    exit code says, and ``unreachable`` with the reason when the node could not be probed."""
    from provision import pipeline
    from provision.stages.preflight import exit_code

    node = node_for(name, settings)
    report = _through(runner, lambda: pipeline.preflight(nodes=[node], ignore=ignore, timeout=timeout, forks=1))
    host = report.hosts[0]
    if not host.reachable:
        return {"unreachable": True, "msg": host.error}
    data = host.as_dict()
    code = exit_code(report, fail_on=fail_on, ignore=ignore)
    failing = [c for c in host.checks if c.status == "fail" or fail_on == "warn" and c.status == "warn"]
    fact = {**(settings if isinstance(settings, dict) else {}), "decision": data["decision"], "checks": data["checks"]}
    result: dict[str, Any] = {"changed": False, "decision": data["decision"], "checks": data["checks"],
                              "ansible_facts": {"provision": fact}}
    if code:
        result.update(failed=True, msg="; ".join(f"{c.id}: {c.message}" for c in failing) or "preflight failed")
    return result


def apply(name: str, settings: Any, runner: Runner, *, check: bool, diff: bool, ignore=(), force: bool = False,
          remedies: bool = True, timeout: float = 120) -> dict[str, Any]:
    """The host's apply: ``changed`` only when a step changes (or, in check mode, would change)
    something, the report of its steps, the diff in Ansible's form, ``failed`` as the CLI's exit code."""
    from provision import pipeline
    from provision.stages.apply import CHANGES

    node = node_for(name, settings)
    done = _through(runner, lambda: pipeline.apply(nodes=[node], check=check, diff=diff, ignore=ignore, force=force,
                                                   remedies=remedies, timeout=timeout, forks=1))
    host = done.as_dict()["hosts"][0]
    if not host["reachable"]:
        return {"unreachable": True, "msg": host["error"]}
    result: dict[str, Any] = {"changed": any(s["action"] in CHANGES for s in host["steps"]), "report": host}
    if diff and (done.diff or done.object_diff):
        result["diff"] = {"prepared": done.diff + done.object_diff}
    if done.exit_code == 1:
        result.update(failed=True, msg=host["error"] or "; ".join(done.drift or []) or "apply failed")
    return result


def verify(name: str, settings: Any, runner: Runner, *, timeout: float = 30) -> dict[str, Any]:
    """The host's drift, changing nothing: ``failed`` when it drifted, with each drifted object."""
    from provision import pipeline

    node = node_for(name, settings)
    report = _through(runner, lambda: pipeline.verify(nodes=[node], timeout=timeout, forks=1))
    host = report.hosts[0]
    if not host.reachable:
        return {"unreachable": True, "msg": host.error}
    checks = host.as_dict()["checks"]
    drift = [c["message"] for c in checks if c["status"] == "fail"]
    result: dict[str, Any] = {"changed": False, "checks": checks, "drift": drift}
    if drift:
        result.update(failed=True, msg="drift: " + "; ".join(drift))
    return result


def answer(result: dict) -> dict:
    """The node program's answer from the ``run`` module's result, or :class:`Unreachable`."""
    if result.get("unreachable"):
        raise Unreachable(result.get("msg") or "unreachable")
    if result.get("failed") or "answer" not in result:
        raise Unreachable(result.get("msg") or "the run module gave no answer")
    return result["answer"]
