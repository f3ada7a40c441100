"""A node for apply tests: this machine seen from a private mount namespace in which /etc and /var/lib are
overlays whose changes land in a folder of the test. Each command runs in a new namespace over the
same folders, so what one apply wrote the next one finds; this machine's own /etc and /var/lib are
never written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import provision_bin

OVERLAID = {"/etc": "etc", "/var/lib": "var-lib"}


class OverlayNode:
    def __init__(self, base: Path) -> None:
        self.base = base
        for name in OVERLAID.values():
            (base / name / "upper").mkdir(parents=True)
            (base / name / "work").mkdir()

    def script(self, then: str) -> str:
        mounts = " && ".join(
            f"mount -t overlay overlay -o lowerdir={target},upperdir={self.base / name / 'upper'},"
            f"workdir={self.base / name / 'work'} {target}" for target, name in OVERLAID.items())
        return f"{mounts} && {then}"

    def run(self, *argv: str, before: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
        """``argv`` inside the node; ``before`` is shell run there first (the test's own, never an input)."""
        then = (before + "; " if before else "") + 'exec "$@"'
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", self.script(then),
                               "sh", *argv], capture_output=True, text=True, timeout=timeout)

    def provision(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(provision_bin(), *args, **kwargs)

    def path(self, target: str) -> Path:
        """Where a file the node wrote under /etc or /var/lib is kept."""
        for prefix, name in OVERLAID.items():
            if target.startswith(prefix + "/"):
                return self.base / name / "upper" / target[len(prefix) + 1:]
        raise ValueError(f"{target} is not under an overlaid folder")
