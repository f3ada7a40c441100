"""Render each node's configuration from the plugins' templates, into a tree, atomically."""

from __future__ import annotations

from json.encoder import encode_basestring_ascii
from typing import Any

from provision.api import LIBVIRT_DIR, RenderContext, RenderedFile  # noqa: F401  (plugins' imports, as before)
from provision.errors import InputError, SettingsError, Unreachable
from provision.remote.hosts import Node
from provision.results import Decision
from provision.stages.defaults import with_defaults

MANIFEST = "manifest.json"


def node_context(node: Node, decision: Decision | None, *, hooks) -> RenderContext:
    """What the plugins see of one node when they render it and name its apply steps."""
    from provision.templating import template

    paths = hooks.template_paths
    return RenderContext(node.name, node.settings, decision, node.spec.is_local, hooks,
                         lambda name, **values: template(paths, name).render(**values))


def render_node(node: Node, decision: Decision | None, *, hooks) -> list[RenderedFile]:
    """Every plugin's files for one node; two files for one target is an error."""
    from provision.secrets import secret_files

    ctx = node_context(node, decision, hooks=hooks)
    files: dict[str, RenderedFile] = {}
    secrets = secret_files(node.settings)
    for plugin, produced in hooks.render(ctx):
        for f in produced:
            f = RenderedFile(f.target, f.content, f.mode, plugin)  # dataclasses.replace costs more
            if problem := target_problem(f.target):
                raise SettingsError([((), f"{plugin} renders {f.target!r}: {problem}")])
            if f.target in secrets:
                raise SettingsError([(secrets[f.target], f"{plugin} renders {f.target}, which this field names as "
                                                         "a secret file; a secret file is never written or shown")])
            if f.target in files:
                raise SettingsError([((), f"{f.target} is rendered by both {files[f.target].plugin} and {plugin}")])
            files[f.target] = f
    return sorted(files.values(), key=lambda f: f.target)


def target_problem(target: str) -> str | None:
    """Why ``target`` cannot be a rendered file's path, or None. The tree is DIR/<host>/<target>, beside
    the host's manifest: a target must be a file's absolute path that stays inside the host's tree."""
    parts = target.split("/")
    if not target.startswith("/") or any(p in (".", "..") for p in parts):
        return "a target must be an absolute path without '.' or '..' parts"
    if target.endswith("/") or "" in parts[1:]:
        return "a target must name a file: no trailing '/' and no empty parts"
    if not target.isprintable():
        return "a target must not contain control characters"
    if target == f"/{MANIFEST}":
        return f"/{MANIFEST} is where the rendered tree keeps its manifest"
    return None


def manifest(files: list[RenderedFile]) -> list[dict[str, Any]]:
    return [{"path": f.relative, "target": f.target, "mode": f.mode, "plugin": f.plugin}
            for f in files]


def manifest_text(host: str, files: list[RenderedFile]) -> str:
    """The manifest as JSON, one file a line; strings quoted by json's own C quoting, as json.dumps
    does (a json.dumps call per entry, or indent=, costs more than the render of a template)."""
    quote = encode_basestring_ascii
    entries = ",\n".join(
        f'    {{"path": {quote(f.relative)}, "target": {quote(f.target)}, "mode": {quote(f.mode)}, "plugin": {quote(f.plugin)}}}'
        for f in files)
    return f'{{"host": {quote(host)}, "files": [\n{entries}\n]}}\n'


def decisions_for(nodes: list[Node], *, hooks, forks: int, timeout: float) -> dict[str, Decision]:
    """Preflight decisions of the nodes whose virt_type is ``auto`` (one probe each)."""
    from provision.stages.preflight import preflight

    wanted = [n for n in nodes if n.settings["virt_type"] == "auto"]
    if not wanted:
        return {}
    report = preflight(nodes=wanted, hooks=hooks, forks=forks, timeout=timeout, settings_probes=False)
    down = [h for h in report.hosts if not h.reachable]
    if down:
        raise Unreachable("virt_type auto needs each node's preflight decision: "
                          + "; ".join(f"{h.host}: {h.error}" for h in down))
    return {h.host: h.decision for h in report.hosts if h.decision is not None}


def prepare(nodes: list[Node], *, hooks, forks: int = 8, timeout: float = 30) -> tuple[list[Node], dict[str, Decision]]:
    """The nodes with every default filled in (no inventory) and the decisions of those whose
    virt_type is auto: what rendering needs, gathered once for --out and --diff alike."""
    nodes = with_defaults(nodes, hooks=hooks)
    return nodes, decisions_for(nodes, hooks=hooks, forks=forks, timeout=timeout)


def render_all(*, nodes: list[Node], decisions: dict[str, Decision], hooks) -> dict[str, list[RenderedFile]]:
    """Every node's files, in memory (for --diff); any error means none are returned."""
    results = {node.name: _render_or_problems(node, decisions, hooks) for node in nodes}
    _refuse([line for _, problems in results.values() for line in problems])
    return {name: files for name, (files, _) in results.items() if files is not None}


def _render_or_problems(node: Node, decisions: dict[str, Decision], hooks) -> tuple[list[RenderedFile] | None, list[str]]:
    """The node's files, or its settings problems as lines naming the file, host and field."""
    try:
        return render_node(node, decisions.get(node.name), hooks=hooks), []
    except SettingsError as exc:
        return None, exc.lines(node.name, node.file_of)


def _refuse(problems: list[str]) -> None:
    if problems:
        raise InputError("cannot render:\n  " + "\n  ".join(problems))


def diff_against_nodes(rendered: dict[str, list[RenderedFile]], nodes: list[Node], *, timeout: float = 30,
                       forks: int = 8) -> str:
    """A unified diff of each node's current files against the rendered ones, in the nodes' order;
    ``forks`` nodes are read at a time. Changes nothing."""
    from provision.parallel import fan_out

    return "".join(fan_out(lambda node: _diff_node(node, rendered[node.name], timeout), nodes, forks=forks))


def _diff_node(node: Node, files: list[RenderedFile], timeout: float) -> str:
    """The node's files against the rendered ones. A file is read only when it is a regular file (a
    symlink is named, not followed; a FIFO or device is not opened), and the text of every secret file
    the settings name is replaced on the node before it is sent: no secret reaches the diff."""
    import difflib

    from provision.remote.probe import gather_facts
    from provision.secrets import redact_line, secret_files

    secrets = sorted(secret_files(node.settings))
    ops = {f"file.{i}": {"op": "node_file", "path": f.target, "secrets": secrets} for i, f in enumerate(files)}
    facts = gather_facts(node.spec, ops, timeout=timeout)
    chunks = []
    for i, f in enumerate(files):
        answer, label = facts.answer(f"file.{i}"), f"{node.name}:{f.target}"
        if "symlink" in answer or "kind" in answer or "error" in answer:
            what = (f"is a symlink to {answer['symlink']}; not followed" if "symlink" in answer
                    else f"is {answer['kind']}; not read" if "kind" in answer else f"cannot be read: {answer['error']}")
            chunks.append(f"provision: {label} {what}\n")
            continue
        current = answer.get("text")
        old = [] if current is None else current.splitlines(True)
        chunks.extend(difflib.unified_diff(old, f.content.splitlines(True),
                                           "/dev/null" if current is None else f"a/{label}", f"b/{label}"))
    return "".join(redact_line(line) for line in chunks)
