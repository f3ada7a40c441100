"""Render each node's configuration from the plugins' templates, into a tree, atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.hosts import Node
from provision.results import Decision

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RenderedFile:
    """One file for a node: where it goes, what it holds, who made it.

    ``apply`` carries what the apply step needs besides the content, e.g. the path of
    the file holding a secret's value (never the value itself).
    """

    target: str
    content: str
    mode: str = "0644"
    plugin: str = ""
    apply: dict[str, Any] = field(default_factory=dict)

    @property
    def relative(self) -> str:
        return self.target.lstrip("/")


@dataclass(frozen=True)
class RenderContext:
    """What a plugin's renderer sees of one node."""

    host: str
    settings: dict[str, Any]
    decision: Decision | None
    is_local: bool
    hooks: Any = field(repr=False, compare=False)  # the façade, for renderers that gather from other plugins
    _render: Callable[..., str] = field(repr=False, compare=False)

    @property
    def virt_type(self) -> str:
        """``virt_type`` as pinned by the inventory, else as the node's preflight decided."""
        pinned = self.settings["hypervisor"]["virt_type"]
        return self.decision.virt_type if pinned == "auto" and self.decision else pinned

    @property
    def cpu_mode(self) -> str:
        """``cpu_mode`` as set, else the decision's when it decided this virt_type, else nova's default for it."""
        mode = self.settings["hypervisor"]["cpu_mode"]
        if mode != "auto":
            return mode
        if self.decision and self.decision.virt_type == self.virt_type:
            return self.decision.cpu_mode
        return "host-model" if self.virt_type == "kvm" else "none"

    def render(self, template: str, **values: Any) -> str:
        text = self._render(template, host=self.host, settings=self.settings, **values)
        return text if text.endswith("\n") else text + "\n"


def render_node(node: Node, decision: Decision | None, *, hooks) -> list[RenderedFile]:
    """Every plugin's files for one node; two files for one target is an error."""
    from provision.templating import environment

    env = environment(tuple(hooks.template_paths()))
    ctx = RenderContext(node.name, node.settings, decision, node.spec.is_local, hooks,
                        lambda name, **values: env.get_template(name).render(**values))
    files: dict[str, RenderedFile] = {}
    for plugin, produced in hooks.render(ctx):
        for f in produced:
            f = replace(f, plugin=plugin)
            if f.target in files:
                raise InputError(f"host {node.name}: {f.target} is rendered by both {files[f.target].plugin} and {plugin}")
            files[f.target] = f
    return sorted(files.values(), key=lambda f: f.target)


def manifest(files: list[RenderedFile]) -> list[dict[str, Any]]:
    return [{"path": f.relative, "target": f.target, "mode": f.mode, "plugin": f.plugin, **({"apply": f.apply} if f.apply else {})}
            for f in files]


def write_trees(out: Path, rendered: dict[str, list[RenderedFile]]) -> None:
    """Write ``out/<host>/...`` and each manifest: all into a temporary folder first, then
    move each host's tree into place, so a failure leaves ``out`` as it was."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=out))
    try:
        for host, files in rendered.items():
            root = staging / host
            for f in files:
                path = root / f.relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f.content)
                os.chmod(path, int(f.mode, 8))
            root.mkdir(parents=True, exist_ok=True)
            (root / MANIFEST).write_text(json.dumps({"host": host, "files": manifest(files)}, indent=2) + "\n")
        for host in rendered:
            final = out / host
            if final.exists():
                old = staging / f".old-{host}"
                final.rename(old)
            (staging / host).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def decisions_for(nodes: list[Node], *, hooks, forks: int, timeout: float) -> dict[str, Decision]:
    """Preflight decisions of the nodes whose virt_type is ``auto`` (one probe each)."""
    from provision.preflight import preflight

    wanted = [n for n in nodes if n.settings["hypervisor"]["virt_type"] == "auto"]
    if not wanted:
        return {}
    report = preflight(nodes=wanted, hooks=hooks, forks=forks, timeout=timeout)
    down = [h for h in report.hosts if not h.reachable]
    if down:
        raise Unreachable("; ".join(f"{h.host}: {h.error}" for h in down))
    return {h.host: h.decision for h in report.hosts}


class Unreachable(Exception):
    """A node whose virt_type is auto could not be probed, so nothing can be rendered."""


def render_all(*, nodes: list[Node], hooks, forks: int = 8, timeout: float = 30) -> dict[str, list[RenderedFile]]:
    """Every node's files, in memory; any error means none are returned."""
    defaults = None
    if any(not n.settings for n in nodes):  # no inventory: every default
        defaults = hooks.settings_model()().model_dump(mode="json")
    nodes = [n if n.settings else replace(n, settings=defaults) for n in nodes]
    decisions = decisions_for(nodes, hooks=hooks, forks=forks, timeout=timeout)
    return {n.name: render_node(n, decisions.get(n.name), hooks=hooks) for n in nodes}


def diff_against_nodes(rendered: dict[str, list[RenderedFile]], nodes: list[Node], *, timeout: float = 30) -> str:
    """A unified diff of each node's current files against the rendered ones; changes nothing."""
    import difflib

    from provision.probe import gather_facts

    chunks = []
    for node in nodes:
        files = rendered[node.name]
        ops = {f"file.{i}": {"op": "read", "path": f.target} for i, f in enumerate(files)}
        facts = gather_facts(node.spec, ops, timeout=timeout)
        for i, f in enumerate(files):
            current = facts.text(f"file.{i}")
            old = [] if current is None else current.splitlines(True)
            label = f"{node.name}:{f.target}"
            chunks.extend(difflib.unified_diff(old, f.content.splitlines(True),
                                               "/dev/null" if current is None else f"a/{label}", f"b/{label}"))
    return "".join(chunks)
