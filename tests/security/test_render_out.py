"""render --out never destroys what provision did not make, one render per folder at a time, and an
interrupted render leaves every host folder old or new, never missing."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from provision.stages.tree import STAGING_MARK, in_the_way
from tests.cli.test_render import PINNED, inventory
from tests.conftest import provision_bin


def snapshot(root: Path) -> dict[str, bytes | str]:
    return {str(p.relative_to(root)): (f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def render(cli, inv, out, *args):
    return cli("render", "-i", inv, "--out", str(out), *args)


def test_a_folder_without_provisions_manifest_is_never_replaced(cli, tmp_path):
    inv = inventory(tmp_path, PINNED, hosts=("n0", "n1"))
    out = tmp_path / "out"
    (out / "n1" / ".git").mkdir(parents=True)
    (out / "n1" / ".git" / "config").write_text("[core]\n")
    (out / "n1" / "notes.md").write_text("mine\n")
    before = snapshot(out)
    result = render(cli, inv, out)
    assert result.exit_code == 2, result.output
    assert (f"--out {out}: {out}/n1 holds no manifest.json of provision's for n1; it was not rendered by provision; "
            "nothing was changed") in result.stderr
    assert snapshot(out) == before  # not even n0 was written


def test_a_file_provision_did_not_list_keeps_the_host_tree(cli, tmp_path):
    inv = inventory(tmp_path, PINNED, hosts=("n0", "n1"))
    out = tmp_path / "out"
    assert render(cli, inv, out).exit_code == 0
    (out / "n1" / "etc" / "notes.txt").write_text("an operator's note\n")
    before = snapshot(out)
    result = render(cli, inv, out)
    assert result.exit_code == 2
    assert f"{out}/n1/etc/notes.txt is not listed in {out}/n1/manifest.json; provision did not make it" in result.stderr
    assert snapshot(out) == before
    (out / "n1" / "etc" / "notes.txt").unlink()
    assert render(cli, inv, out).exit_code == 0  # its own tree alone: replaced


@pytest.mark.parametrize("what", ["symlink", "file", "foreign manifest"])
def test_other_things_in_the_way_are_input_errors(cli, tmp_path, what):
    inv = inventory(tmp_path, PINNED, hosts=("n1",))
    out = tmp_path / "out"
    out.mkdir()
    if what == "symlink":
        (out / "n1").symlink_to("/etc")
        message = f"{out}/n1 is a symlink, not a host tree provision rendered"
    elif what == "file":
        (out / "n1").write_text("x")
        message = f"{out}/n1 is a file, not a host tree provision rendered"
    else:
        (out / "n1").mkdir()
        (out / "n1" / "manifest.json").write_text(json.dumps({"host": "n9", "files": []}))
        message = f"{out}/n1 holds no manifest.json of provision's for n1"
    before = snapshot(out)
    result = render(cli, inv, out)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert snapshot(out) == before


def test_out_may_not_be_the_inventorys_folder(cli, tmp_path):
    folder = tmp_path / "inv"
    folder.mkdir()
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"hosts.yml": {"ansible_connection": "local"}},
                                                              "vars": {"provision": PINNED}}}))
    (folder / "group_vars").mkdir()
    before = snapshot(tmp_path)
    for out, inv, message in [
        (folder, folder, f"--out {folder}: is inside the inventory's folder {folder}"),
        (folder / "trees", folder, f"--out {folder / 'trees'}: is inside the inventory's folder {folder}"),
        (folder, folder / "hosts.yml", f"--out {folder}: is the folder of the inventory {folder / 'hosts.yml'}"),
        (folder / "group_vars", folder / "hosts.yml", f"is inside the inventory's folder {folder / 'group_vars'}"),
    ]:
        result = render(cli, str(inv), out)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", ["/etc", "/", "/usr/share", "/tmp"])
def test_out_through_a_symlink_into_a_system_folder_is_refused(cli, tmp_path, target):
    inv = inventory(tmp_path, PINNED, hosts=("ssh",))  # DIR/ssh would be /etc/ssh
    link = tmp_path / "out"
    link.symlink_to(target)
    before = sorted(os.listdir(target))
    result = render(cli, inv, link)
    assert result.exit_code == 2
    assert f"--out {link}: is a system folder (through symlinks: {target})" in result.stderr
    assert sorted(os.listdir(target)) == before


def test_a_stale_staging_folder_is_removed_and_a_foreign_one_kept(cli, tmp_path):
    inv = inventory(tmp_path, PINNED, hosts=("n1",))
    out = tmp_path / "out"
    (out / ".render-dead1" / "n1").mkdir(parents=True)
    (out / ".render-dead1" / STAGING_MARK).write_text("")
    (out / ".render-notours").mkdir()
    (out / ".render-notours" / "keep").write_text("someone's\n")  # not marked, not empty: not ours
    assert render(cli, inv, out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".render-notours", "n1"]


def test_a_second_render_waits_for_the_first(cli, tmp_path):
    inv = inventory(tmp_path, PINNED, hosts=("n1",))
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a render in progress holds it
        result = render(cli, inv, out, "--timeout", "0.5")
        assert result.exit_code == 1
        assert f"another provision render is writing into {out}; waited 0.5 s (--timeout)" in result.stderr
        assert list(out.iterdir()) == []
        threading.Timer(0.5, fcntl.flock, (fd, fcntl.LOCK_UN)).start()
        start = time.monotonic()
        assert render(cli, inv, out, "--timeout", "10").exit_code == 0
        assert time.monotonic() - start >= 0.4
    finally:
        os.close(fd)


# -- many rounds: concurrency and interruptions, with trees that tell which render made them -----------

def versioned_inventory(folder: Path, hosts: int, version: str) -> str:
    folder.mkdir(exist_ok=True)
    path = folder / f"{version}.yml"
    path.write_text(yaml.safe_dump({"all": {
        "hosts": {f"n{i:04d}": {"ansible_connection": "local"} for i in range(hosts)},
        "vars": {"provision": {**PINNED, "network": {"bridges": [{"name": f"br-{version}", "interfaces": ["eth9"]}]}}}}}))
    return str(path)


def tree_versions(out: Path, hosts: int) -> dict[str, str]:
    """Each host folder's version; fails when a folder is missing, incomplete, or holds anything else."""
    versions = {}
    for i in range(hosts):
        host = f"n{i:04d}"
        assert (out / host).is_dir(), f"{host} is missing"
        assert in_the_way(out, host) is None, in_the_way(out, host)  # exactly its manifest's files
        files = {f["path"] for f in json.loads((out / host / "manifest.json").read_text())["files"]}
        version = {v for v in ("a", "b") if f"etc/provision/libvirt/network-br-{v}.xml" in files}
        assert len(version) == 1, (host, files)
        versions[host] = version.pop()
    return versions


@pytest.mark.slow
def test_two_renders_at_once_never_mix(tmp_path):
    hosts = 300
    invs = {v: versioned_inventory(tmp_path / "inv", hosts, v) for v in ("a", "b")}
    out = tmp_path / "out"
    for _ in range(6):
        procs = [subprocess.Popen([provision_bin(), "render", "-i", invs[v], "--out", str(out)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for v in ("a", "b")]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert not any("Traceback" in err for _, err in outputs)
        assert len(set(tree_versions(out, hosts).values())) == 1  # one render's tree, whole
        assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


@pytest.fixture
def busy_cpus():
    """A busy loop on every CPU, for as long as the test runs: signals must be handled on a loaded machine."""
    from provision.parallel import cpus

    loops = [subprocess.Popen(["python3", "-c", "while True: pass"]) for _ in range(cpus())]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def stuck(pgid: int) -> str:
    """What each process of a group that did not end is doing: its state, kernel wait channel and
    Python stack (py-spy where installed), for the failure's message."""
    import shutil

    said = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            line = f"pid {pid} state {state} wchan {wchan}"
            spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
            if spy:
                line += "\n" + subprocess.run([spy, "dump", "--pid", pid], capture_output=True, text=True).stdout
            said.append(line)
        except OSError:
            continue
    return "; ".join(said) or "no process left in the group (its pipe was held elsewhere)"


@pytest.fixture
def subreaper():
    """This process adopts what an ended render leaves (a child subreaper, as a CI job's shell or systemd
    is): a worker that outlives its render is then seen here, and reaped here, not by a slow init."""
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    yield
    libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)


def gone(pgid: int, deadline: float) -> bool:
    """Whether every process of the group has ended by ``deadline``; those adopted here are reaped."""
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-pgid, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_interrupted_renders_end_within_a_second_leaving_every_host_old_or_new(tmp_path, busy_cpus, subreaper):
    """50 rounds of SIGINT to the process group (Ctrl-C) and SIGTERM to the render alone (and a few of
    SIGKILL), at random moments of a 2,000-host render, with every CPU busy beside it: each render and
    its workers are gone within 1 s, and every host folder stays whole, old or new. A round that hangs
    fails within seconds instead of stalling the suite."""
    hosts = 2000
    invs = {v: versioned_inventory(tmp_path / "inv", hosts, v) for v in ("a", "b")}
    out = tmp_path / "out"
    subprocess.run([provision_bin(), "render", "-i", invs["a"], "--out", str(out)], check=True, capture_output=True)
    start = time.monotonic()
    subprocess.run([provision_bin(), "render", "-i", invs["b"], "--out", str(out)], check=True, capture_output=True)
    duration = time.monotonic() - start
    rng = random.Random(21)
    slowest, seen = 0.0, set()
    for round_ in range(50):
        sig = signal.SIGKILL if round_ % 10 == 9 else (signal.SIGINT, signal.SIGTERM)[round_ % 2]
        version = "ab"[round_ // 2 % 2]
        proc = subprocess.Popen([provision_bin(), "render", "-i", invs[version], "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(rng.uniform(0.1, duration * 1.1))
        sent = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=5)  # the output pipe closes: no worker is left holding it
        except subprocess.TimeoutExpired:
            where = stuck(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"round {round_}: the render did not end within 5 s of {sig.name}: {where}")
        ended = gone(proc.pid, sent + 5)
        took = time.monotonic() - sent
        assert ended, f"round {round_}: processes of the render are still running 5 s after {sig.name}"
        assert took <= 1.0, f"round {round_}: the render and its workers took {took:.2f} s to end after {sig.name}"
        assert b"Traceback" not in err, err.decode()
        slowest = max(slowest, took)
        seen.add(proc.returncode)
        tree_versions(out, hosts)  # every host whole, one version each
    assert seen & {-signal.SIGTERM, -signal.SIGKILL}, seen
    subprocess.run([provision_bin(), "render", "-i", invs["a"], "--out", str(out)], check=True, capture_output=True)
    assert set(tree_versions(out, hosts).values()) == {"a"}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # staging of ended renders removed


def test_scratch_space_in_dev_shm_is_fine(cli, tmp_path):
    import shutil
    import tempfile

    inv = inventory(tmp_path, PINNED, hosts=("n1",))
    out = Path(tempfile.mkdtemp(dir="/dev/shm")) / "out"
    try:
        assert render(cli, inv, out).exit_code == 0
        assert (out / "n1" / "manifest.json").exists()
    finally:
        shutil.rmtree(out.parent)
    assert render(cli, inv, Path("/dev/shm")).exit_code == 2


SIGTERM_AT_THE_EXCHANGE = """
import os, signal, sys
from provision import pipeline
from provision.stages import tree

exchange = tree._swap_in


def swap_in(*args, **kwargs):  # a SIGTERM that comes while the exchange holds signals back
    exchange(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)


tree._swap_in = swap_in
pipeline.render(inventory=sys.argv[1], out=sys.argv[2])
"""


def test_a_sigterm_held_back_by_the_exchange_ends_the_render_at_once(tmp_path):
    """A SIGTERM during the exchange is delivered as it ends: every host is new by then, and the render
    ends at once, leaving the marked staging folder (with the trees swapped out) for the next render
    to remove, instead of removing thousands of trees first."""
    hosts = 300
    invs = {v: versioned_inventory(tmp_path / "inv", hosts, v) for v in ("a", "b")}
    out = tmp_path / "out"
    subprocess.run([provision_bin(), "render", "-i", invs["a"], "--out", str(out)], check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", SIGTERM_AT_THE_EXCHANGE, invs["b"], str(out)], capture_output=True,
                          timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr.decode()[-2000:]
    assert b"Traceback" not in done.stderr
    assert set(tree_versions(out, hosts).values()) == {"b"}
    (staging,) = [p for p in out.iterdir() if p.name.startswith(".render-")]
    assert (staging / ".provision-staging").exists() and len(list(staging.iterdir())) == hosts + 1
    subprocess.run([provision_bin(), "render", "-i", invs["a"], "--out", str(out)], check=True, capture_output=True)
    assert set(tree_versions(out, hosts).values()) == {"a"}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
