"""Is the software a feature needs installed on the node?

Programs are looked up on the node's PATH and in the sbin folders; loadable pieces (a libvirt
storage backend, a QEMU block driver) are files found by glob patterns, where any one of a
piece's patterns matching is enough (distributions put them in different folders).

>>> NFS = Software("the NFS client", programs=("mount.nfs",), remedy="apt-get install nfs-common")
>>> probe("nfs.installed", NFS)
{'nfs.installed': {'op': 'installed', 'programs': ['mount.nfs'], 'globs': []}}
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.facts import Facts
from provision.results import CheckResult, failed, passed, skipped


@dataclass(frozen=True)
class Software:
    """What a feature needs: every program, and for each piece one match of its patterns."""

    what: str
    programs: tuple[str, ...] = ()
    pieces: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, glob patterns)
    remedy: str = ""


def probe(key: str, *software: Software) -> dict[str, dict]:
    """One probe operation under ``key`` for everything these need."""
    programs = sorted({p for s in software for p in s.programs})
    globs = sorted({g for s in software for _, patterns in s.pieces for g in patterns})
    return {key: {"op": "installed", "programs": programs, "globs": globs}}


def found(facts: Facts, key: str, software: Software) -> tuple[list[str], dict[str, str]]:
    """(what is missing, evidence: where each thing was found or "not found")."""
    ans = facts.answer(key)
    where = ans.get("programs") or {}
    globs = ans.get("globs") or {}
    missing, evidence = [], {}
    for program in software.programs:
        evidence[program] = where.get(program) or "not found"
        if not where.get(program):
            missing.append(program)
    for name, patterns in software.pieces:
        matches = [m for pattern in patterns for m in globs.get(pattern, [])]
        evidence[name] = matches[0] if matches else "not found in " + ", ".join(patterns)
        if not matches:
            missing.append(name)
    return missing, evidence


def software_check(facts: Facts, key: str, software: Software, *, needed: bool, unneeded: str) -> CheckResult:
    """Passed when installed, failed when missing and the node's plan needs it, skipped when it
    does not (``unneeded`` says why)."""
    if "error" in facts.answer(key):
        return skipped(f"cannot tell whether {software.what} is installed: {facts.error(key)}", facts.evidence(key))
    missing, evidence = found(facts, key, software)
    return verdict(software, missing, evidence, needed=needed, unneeded=unneeded)


def verdict(software: Software, missing: list[str], evidence: dict[str, str], *, needed: bool, unneeded: str) -> CheckResult:
    """The check result for what :func:`found` (and anything a caller adds to it) says is missing."""
    if not needed:
        state = f"missing {', '.join(missing)}" if missing else "installed"
        return skipped(f"not needed: {unneeded} ({software.what}: {state})", evidence)
    if missing:
        return failed(f"{software.what}: missing {', '.join(missing)} (the inventory needs it)", evidence, software.remedy)
    return passed(f"{software.what}: installed", evidence)
