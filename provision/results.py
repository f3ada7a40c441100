"""Results are data: what a check found, what a node decided, a whole report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")


@dataclass(frozen=True)
class CheckResult:
    """One check on one node.

    >>> CheckResult("kvm.api", "pass", "/dev/kvm answers", {"/dev/kvm": "api 12"})
    """

    id: str
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""

    def ignored(self) -> CheckResult:
        """The same result turned from a failure into a warning, saying so."""
        return replace(self, status="warn", message=f"{self.message} (failure ignored by --ignore)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(message: str, evidence: dict | None = None) -> CheckResult:
    return CheckResult("", "pass", message, evidence or {})


def warned(message: str, evidence: dict | None = None, remedy: str = "") -> CheckResult:
    return CheckResult("", "warn", message, evidence or {}, remedy)


def failed(message: str, evidence: dict | None = None, remedy: str = "") -> CheckResult:
    return CheckResult("", "fail", message, evidence or {}, remedy)


def skipped(message: str, evidence: dict | None = None) -> CheckResult:
    return CheckResult("", "skip", message, evidence or {})


@dataclass(frozen=True)
class Decision:
    """Which libvirt domain type a node runs guests with, and why."""

    virt_type: Literal["kvm", "qemu"]
    cpu_mode: str
    reasons: tuple[str, ...]
    cpu_models: tuple[str, ...] = ()
    plugin: str = ""  # the plugin that decided (filled in by the core)

    def as_dict(self) -> dict[str, Any]:
        data = {"virt_type": self.virt_type, "cpu_mode": self.cpu_mode, "reasons": list(self.reasons)}
        if self.plugin:
            data["plugin"] = self.plugin
        if self.cpu_models:
            data["cpu_models"] = list(self.cpu_models)
        return data


@dataclass(frozen=True)
class HostReport:
    """Everything preflight learnt about one node."""

    host: str
    reachable: bool
    decision: Decision | None = None
    checks: tuple[CheckResult, ...] = ()
    error: str = ""
    seconds: float = 0.0
    groups: tuple[str, ...] = ()  # the node's inventory groups (the HTML report groups by them); not in JSON
    remedies: tuple = ()  # what apply would do about the failing checks (provision.api.Remedy); not in JSON

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "reachable": self.reachable,
            "decision": self.decision.as_dict() if self.decision else None,
            "checks": [c.as_dict() for c in self.checks],
        }
        if self.error:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class Report:
    """A preflight run over one or more nodes."""

    hosts: tuple[HostReport, ...]
    schema: str = "provision.preflight/1"

    def with_groups(self, nodes) -> Report:
        """The report with each host's inventory groups, from the nodes it was made of."""
        import dataclasses

        groups = {n.name: tuple(n.groups) for n in nodes}
        return dataclasses.replace(self, hosts=tuple(dataclasses.replace(h, groups=groups.get(h.host, h.groups))
                                                     for h in self.hosts))

    def summary(self) -> dict[str, int]:
        totals: dict[str, int] = {s: sum(h.count(s) for h in self.hosts) for s in STATUSES}
        # An unreachable node ran no check, yet it must count as a failure.
        totals["fail"] += sum(1 for h in self.hosts if not h.reachable)
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "hosts": [h.as_dict() for h in self.hosts],
            "summary": self.summary(),
        }
