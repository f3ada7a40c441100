"""A node's facts: the probe's answers, read by checks as pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Facts(Mapping):
    """Read-only view of ``{key: answer}`` with helpers for the common shapes.

    >>> f = Facts({"cpu.info": {"path": "/proc/cpuinfo", "text": "flags: vmx"}})
    >>> f.text("cpu.info")
    'flags: vmx'
    """

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self._answers = dict(answers)

    def __getitem__(self, key: str) -> Any:
        return self._answers[key]

    def __iter__(self):
        return iter(self._answers)

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, key: str) -> dict[str, Any]:
        value = self._answers.get(key)
        return value if isinstance(value, dict) else {"error": f"fact {key!r} was not gathered"}

    def gathered(self, key: str) -> bool:
        """Whether the probe answered ``key`` (a functional operation is asked for only on request)."""
        return key in self._answers

    def error(self, key: str) -> str | None:
        return self.answer(key).get("error")

    def text(self, key: str) -> str | None:
        """The file's text, or ``None`` when it could not be read."""
        return self.answer(key).get("text")

    def evidence(self, key: str) -> dict[str, Any]:
        """What a check cites: the path it read and the value, or the error."""
        ans = self.answer(key)
        label = ans.get("path") or key
        if "error" in ans:
            return {label: ans["error"]}
        if "text" in ans:
            text = ans["text"].strip()
            return {label: text if len(text) <= 200 else text[:200] + "..."}
        return {label: {k: v for k, v in ans.items() if k != "path"}}

    @property
    def machine(self) -> str:
        """The node's architecture as ``uname -m`` says it (``x86_64``, ``aarch64``, ``s390x``)."""
        return self.answer("_probe").get("machine", "")

