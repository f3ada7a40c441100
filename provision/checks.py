"""A plugin's set of checks, turned into its two check hooks.

>>> checks = CheckSet()
>>> @checks.register("demo.ok", "always passes")
... def demo(facts, settings):
...     return passed("fine")
>>> provision_check_catalog, provision_checks = checks.hooks()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from provision.api import Remedy
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision.results import CheckResult, failed, passed, skipped, warned  # noqa: F401  (re-exported for plugins)

CheckFn = Callable[[Facts, dict[str, Any]], CheckResult]
RemedyFn = Callable[[Facts, dict[str, Any], CheckResult], "Remedy | None"]


class CheckSet:
    """Checks registered by id, each a pure function of (facts, settings)."""

    def __init__(self) -> None:
        self._checks: dict[str, tuple[str, CheckFn]] = {}
        self._remedies: dict[str, RemedyFn] = {}
        self._warnings: set[str] = set()

    def register(self, check_id: str, summary: str) -> Callable[[CheckFn], CheckFn]:
        def decorate(fn: CheckFn) -> CheckFn:
            self._checks[check_id] = (summary, fn)
            return fn

        return decorate

    def remedy(self, check_id: str, *, warnings: bool = False) -> Callable[[RemedyFn], RemedyFn]:
        """Register how ``apply`` fixes ``check_id`` when it fails (with ``warnings``, also when it only
        warns: a fix that is safe wherever it applies, such as a device node's mode):
        ``fn(facts, settings, result)`` → a :class:`~provision.api.Remedy` (its ``check`` is filled in),
        or None when it cannot."""
        def decorate(fn: RemedyFn) -> RemedyFn:
            self._remedies[check_id] = fn
            if warnings:
                self._warnings.add(check_id)
            return fn
        return decorate

    def remedies(self, facts: Facts, settings: dict[str, Any], failing) -> list[Remedy]:
        """The remedies of this set's failing checks."""
        found = []
        for result in failing:
            if result.status != "fail" and result.id not in self._warnings:
                continue
            fn = self._remedies.get(result.id)
            remedy = fn(facts, settings, result) if fn else None
            if remedy is not None:
                found.append(replace(remedy, check=result.id))
        return found

    def remedies_hook(self):
        """The plugin's ``provision_remedies`` implementation, from :meth:`remedy`."""
        @hookimpl
        def provision_remedies(facts: Facts, settings: dict[str, Any], failing) -> list[Remedy]:
            return self.remedies(facts, settings, failing)
        return provision_remedies

    def run(self, facts: Facts, settings: dict[str, Any]) -> list[CheckResult]:
        """Every check; one that raises is reported as that check's internal error, naming its plugin,
        and the others still run."""
        results = []
        for check_id, (_, fn) in self._checks.items():
            try:
                results.append(replace(fn(facts, settings), id=check_id))
            except Exception as exc:
                results.append(internal_error(check_id, fn.__module__, exc))
        return results

    def hooks(self):
        """The plugin's ``provision_check_catalog`` and ``provision_checks`` implementations."""

        @hookimpl
        def provision_check_catalog() -> dict[str, str]:
            return {check_id: summary for check_id, (summary, _) in self._checks.items()}

        @hookimpl
        def provision_checks(facts: Facts, settings: dict[str, Any]) -> list[CheckResult]:
            return self.run(facts, settings)

        return provision_check_catalog, provision_checks


def wanted_virt_type(settings: dict[str, Any]) -> str:
    """The node's wanted virt_type from its settings: ``auto`` unless an inventory pins it."""
    return settings.get("virt_type", "auto")


INTERNAL_ERROR = "internal_error"  # the evidence key of a check whose plugin raised


def internal_error(check_id: str, plugin: str, exc: BaseException) -> CheckResult:
    """A check whose plugin raised instead of answering: a failure that names the plugin and the exception
    (the exit code is then :data:`provision.stages.preflight.INTERNAL_ERROR_EXIT`)."""
    return CheckResult(check_id, "fail", f"internal error in plugin {plugin}: {type(exc).__name__}: {exc}",
                       {INTERNAL_ERROR: plugin}, "report it to the plugin's authors; --disable-plugin NAME skips it")
