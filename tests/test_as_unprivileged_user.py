"""The tests that need no root pass when an unprivileged user runs them: ``pytest -m "not root and not
slow"`` as nobody, in a mount namespace where the interpreter and the checkout can be reached (a folder such as
root's 0700 home is covered by a 0755 tmpfs holding a bind mount of what lies below it; nothing
outside the namespace changes)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.unprivileged import NOBODY

pytestmark = [pytest.mark.root, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def blocked_folder(path: Path) -> tuple[Path, str] | None:
    """The one folder on the way to ``path`` that others cannot enter, and the name below it on the way;
    None when every folder can be entered. More than one such folder is not handled."""
    blocked = [p for p in reversed(path.parents) if not os.stat(p).st_mode & 0o001]
    if len(blocked) > 1:
        pytest.skip(f"more than one folder others cannot enter on the way to {path}: {blocked}")
    if not blocked:
        return None
    return blocked[0], path.relative_to(blocked[0]).parts[0]


def test_the_tests_that_need_no_root_pass_as_nobody():
    work = Path(tempfile.mkdtemp(prefix="provision-unprivileged-", dir="/tmp"))
    try:
        work.chmod(0o755)
        home = work / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        steps = ["set -eu"]
        needed = {Path(os.path.realpath(sys.executable)), REPO}
        for n, (folder, below) in enumerate(dict.fromkeys(filter(None, map(blocked_folder, needed)))):
            hold = work / f"hold{n}"
            hold.mkdir()
            steps += [f'mount --bind "{folder / below}" "{hold}"', f'mount -t tmpfs -o mode=0755 tmpfs "{folder}"',
                      f'mkdir -p "{folder / below}"', f'mount --bind "{hold}" "{folder / below}"']
        steps.append(f'cd "{REPO}"')
        steps.append(f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups env -i HOME="{home}" '
                     f'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 '
                     f'"{sys.executable}" -m pytest -p no:cacheprovider -q -m "not root and not slow" --basetemp="{home}/pt"')
        run = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(steps)],
                             capture_output=True, text=True, timeout=1800)
        summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
        failures = run.stdout[run.stdout.find("= FAILURES ="):] if "= FAILURES =" in run.stdout else run.stdout
        assert run.returncode == 0, failures[:12000] + run.stderr[-2000:]
        passed = int(re.search(r"(\d+) passed", summary).group(1))
        assert passed > 400 and "failed" not in summary and "error" not in summary, summary
    finally:
        shutil.rmtree(work, ignore_errors=True)
