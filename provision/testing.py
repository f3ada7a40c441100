"""Helpers for a plugin author's own tests: a node step's module loaded as the apply agent loads it on a
node, so that its pure planning can be tested on recorded states without root, and its contract checked.

    from provision.api import NodeStep
    from provision.testing import load_step, plan_step

    step = NodeStep("chrony", "/path/to/chrony_agent.py", {"servers": ["192.0.2.1"]})
    answer = plan_step(step, owned={}, context={"controller": "192.0.2.10"})
    assert answer["changes"] == [...]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

from provision.api import NodeStep

REQUIRED = ("plan", "snapshot", "apply", "restore")
GUARDED = ("probes", "confirm")


def outside_stdlib(source: str, filename: str, allowed: frozenset[str] = frozenset({"pyroute2"})) -> list[str]:
    """What code meant for a node imports that a node may not have: anything but the standard library
    and ``allowed``. The source is parsed as Python 3.6 (a node's Python may be that old)."""
    tree = ast.parse(source, filename=filename, feature_version=(3, 6))
    found = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        found += [name for name in names if name.split(".")[0] not in sys.stdlib_module_names | allowed]
    return found


def load_step(step: NodeStep) -> dict[str, Any]:
    """The step module's namespace, compiled from its source exactly as the agent does on the node.
    Raises AssertionError naming what the module lacks, or an import outside the standard library."""
    source = Path(step.agent).read_text()
    for name in outside_stdlib(source, step.agent):
        raise AssertionError(f"{step.agent} imports {name}, which a node may not have (standard library only, and pyroute2)")
    namespace: dict[str, Any] = {"__name__": "provision_step_" + step.name.replace("-", "_")}
    exec(compile(source, f"<{step.name}>", "exec"), namespace)
    wanted = REQUIRED + (GUARDED if step.guarded else ())
    missing = [name for name in wanted if not callable(namespace.get(name))]
    assert not missing, f"{step.agent} lacks {', '.join(missing)} (see provision.api.NodeStepModule)"
    return namespace


def plan_step(step: NodeStep, *, owned: dict | None = None, context: dict | None = None) -> dict[str, Any]:
    """The step's plan as the agent asks for it, checked for the shape the agent reads."""
    answer = load_step(step)["plan"](step.spec, owned or {}, context or {"controller": None})
    assert isinstance(answer, dict) and set(answer) >= {"changes", "refused"}, f"plan must return changes and refused: {answer!r}"
    for change in answer["changes"]:
        assert {"target", "action"} <= set(change), f"a change names its target and action: {change!r}"
    for refusal in answer["refused"]:
        assert {"target", "why"} <= set(refusal), f"a refusal names its target and why: {refusal!r}"
    return answer
