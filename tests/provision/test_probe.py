"""The probe on this real machine: one round trip, answers that match what the kernel says."""

import json
import os
import shlex
import stat
import subprocess
import sys

import pytest

from provision.remote.hosts import parse_host_spec
from provision.remote.probe import Unreachable, gather_facts, probe_command


@pytest.fixture(scope="module")
def local_facts(hooks):
    return gather_facts(parse_host_spec("local://"), hooks.probe_operations)


def test_probe_reads_the_real_cpuinfo(local_facts):
    with open("/proc/cpuinfo") as fh:
        first_cpu = fh.read().split("\n\n")[0] + "\n"
    assert local_facts.text("cpu.info") == first_cpu
    assert local_facts.machine == os.uname().machine


def test_probe_stats_dev_kvm_as_os_stat_does(local_facts):
    answer = local_facts.answer("kvm.device")
    if not os.path.exists("/dev/kvm"):
        assert "ENOENT" in answer["error"]
        return
    st = os.stat("/dev/kvm")
    assert (answer["mode"], answer["uid"], answer["gid"]) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    assert answer["kind"] == "char"


def test_probe_reports_missing_files_as_errors_not_exceptions(hooks):
    facts = gather_facts(parse_host_spec("local://"), {
        "x.missing": {"op": "read", "path": "/nonexistent/file"},
        "x.nocmd": {"op": "run", "argv": ["no-such-command-xyz"]},
        "x.unknown": {"op": "frobnicate"},
        "x.dir": {"op": "listdir", "path": "/proc/self/fd"},
    })
    assert facts.error("x.missing").startswith("ENOENT")
    assert facts.error("x.nocmd") == "ENOENT: not found: no-such-command-xyz"
    assert facts.error("x.unknown") == "unknown probe op 'frobnicate'"
    assert facts.answer("x.dir")["names"]


def test_kernel_config_comes_back_filtered_to_the_symbols_asked(local_facts):
    config = local_facts.text("kernel.config")
    if config is None:
        pytest.skip("no kernel config on this machine")
    lines = config.splitlines()
    assert lines and all(line.startswith("CONFIG_") for line in lines)
    assert any(line.startswith(("CONFIG_KVM=", "CONFIG_BRIDGE=")) for line in lines)
    assert len(lines) < 30


def test_probe_output_is_plain_data_with_every_key(hooks, local_facts):
    assert set(hooks.probe_operations) <= set(local_facts)
    json.dumps(dict(local_facts))


def test_unreachable_host_says_why():
    with pytest.raises(Unreachable, match="Connection refused"):
        gather_facts(parse_host_spec("ssh://nobody@127.0.0.1:1"), {}, timeout=5)


def test_probe_finds_installed_programs_and_files_as_the_shell_does(local_facts):
    import glob
    import shutil

    for key in ("storage.lvm", "network.nftables", "qemu.modules"):
        answer = local_facts.answer(key)
        for program, where in answer["programs"].items():
            expected = shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/libexec")
            assert (where is None) == (expected is None), program
        for pattern, matches in answer["globs"].items():
            assert matches == sorted(glob.glob(pattern)), pattern


def test_a_run_is_skipped_when_its_unless_glob_matches_a_file():
    facts = gather_facts(parse_host_spec("local://"), {
        "told": {"op": "run", "argv": ["echo", "asked"], "unless_glob": ["/no/such/*.so", "/proc/self/sta[t]"]},
        "asked": {"op": "run", "argv": ["echo", "asked"], "unless_glob": ["/no/such/folder/*.so"]},
    })
    assert facts.answer("told") == {"skipped": "not run: /proc/self/stat exists"}
    assert (facts.answer("asked")["rc"], facts.answer("asked")["stdout"]) == (0, "asked\n")


def run_probe_command(python: str, tmp_path) -> subprocess.CompletedProcess:
    """The node side of a remote probe, here: sh with a PATH whose first python3 is a pyenv-like shim
    that would answer wrongly; the program prints the interpreter that ran it."""
    shims = tmp_path / "shims"
    shims.mkdir(exist_ok=True)
    (shims / "python3").write_text("#!/bin/sh\necho shim; exit 3\n")
    (shims / "python3").chmod(0o755)
    command = probe_command(tuple(python.split())) % shlex.quote("import sys; print(sys.executable)")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                          env={"PATH": f"{shims}:/usr/bin:/bin"})


def test_the_probe_prefers_the_system_python_to_what_path_puts_first(tmp_path):
    for python in ("", "auto_silent"):
        assert run_probe_command(python, tmp_path).stdout == "/usr/bin/python3\n"


def test_the_inventorys_interpreter_is_used_as_given(tmp_path):
    assert run_probe_command("/usr/bin/python3.11", tmp_path).stdout == "/usr/bin/python3.11\n"
    assert run_probe_command("python3", tmp_path).stdout == "shim\n"  # asked for, so used
    missing = run_probe_command("/opt/no%such/python3", tmp_path)
    assert missing.returncode == 127 and "/opt/no%such/python3" in missing.stderr


def test_the_local_node_is_probed_by_its_own_python_as_any_node_is(local_facts):
    """Not by provision's interpreter (a venv's, a pyenv build): by the node's system Python, or the one
    the inventory names; one that is missing says so."""
    from dataclasses import replace

    system = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    version = subprocess.run([system, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True).stdout.strip()
    assert local_facts.answer("_probe")["python"] == version
    local = parse_host_spec("local://")
    named = gather_facts(replace(local, python=(sys.executable,)), {})
    assert named.answer("_probe")["python"] == sys.version.split()[0]
    with pytest.raises(Unreachable, match=r"^no Python on the node \(looked for /opt/no-such/python3\): .*No such file"):
        gather_facts(replace(local, python=("/opt/no-such/python3",)), {})



def test_a_zombie_does_not_run(tmp_path):
    """A daemon that died and was not reaped yet (state Z) is not reported as running."""
    import shutil
    import time

    from provision.remote.hosts import parse_host_spec

    program = tmp_path / "pvzombie"
    shutil.copy("/bin/true", program)
    child = subprocess.Popen([str(program)])
    for _ in range(200):  # exited, and not waited for: a zombie named pvzombie
        with open(f"/proc/{child.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    else:
        pytest.fail("the child did not become a zombie")
    try:
        names = gather_facts(parse_host_spec("local://"), {"p": {"op": "processes"}}).answer("p")["names"]
        assert "pvzombie" not in names
        assert "python3" in names or any(n.startswith("python") for n in names)  # the running ones are there
    finally:
        child.wait()


CAPS_HEAD = """<qemuCaps>
  <emulator>{emulator}</emulator>
  <qemuctime>{qemuctime}</qemuctime>
  <selfctime>{selfctime}</selfctime>
  <selfvers>9000000</selfvers>
  <flag name='kvm'/>
  <version>7002022</version>
  <cpu type='kvm' name='qemu64' typename='qemu64-x86_64-cpu' usable='yes'/>
</qemuCaps>
"""


def cached(tmp_path, program, kind, **head):
    """cached_version against a fresh capabilities folder holding one file with ``head``."""
    from provision.node import probe_runs

    folder = tmp_path / f"caps{len(list(tmp_path.glob('caps*')))}"
    folder.mkdir()
    (folder / "a.xml").write_text(CAPS_HEAD.format(**head))
    answer = probe_runs.cached_version(str(program), kind, str(folder))
    return answer and dict(answer, cache=answer["cache"].replace(str(folder), "CAPS"))


def test_versions_come_from_libvirts_cache_only_while_libvirt_would_trust_it(tmp_path):
    program = tmp_path / "qemu-system-x86_64"
    program.write_text("")
    ctime = int(program.stat().st_ctime)
    fresh = cached(tmp_path, program, "qemu", emulator=program, qemuctime=ctime, selfctime=1)
    assert fresh == {"program": str(program), "rc": 0, "version": "7.2.22", "cache": "CAPS/a.xml"}
    # QEMU replaced since libvirt probed it (another ctime), or another emulator: run it instead
    assert cached(tmp_path, program, "qemu", emulator=program, qemuctime=ctime - 1, selfctime=1) is None
    assert cached(tmp_path, program, "qemu", emulator="/usr/bin/qemu-system-i386", qemuctime=ctime, selfctime=1) is None
    # the daemon's version holds while the daemon's binary is the one that wrote the cache
    assert cached(tmp_path, program, "libvirt", emulator="/x", qemuctime=1, selfctime=ctime)["version"] == "9.0.0"
    assert cached(tmp_path, program, "libvirt", emulator="/x", qemuctime=1, selfctime=ctime + 1) is None
    # a program that is not there, or no cache folder (libvirtd never ran, or we may not read it): run it
    assert cached(tmp_path, tmp_path / "missing", "qemu", emulator=program, qemuctime=ctime, selfctime=1) is None
    from provision.node import probe_runs

    assert probe_runs.cached_version(str(program), "qemu", str(tmp_path / "no-caps")) is None


def test_cached_versions_on_this_machine_agree_with_the_programs_themselves(local_facts):
    from provision_plugins.versions import parse_version

    for key, argv in (("qemu.version", ["qemu-system-x86_64", "--version"]), ("libvirt.version", ["libvirtd", "--version"])):
        answer = local_facts.answer(key)
        if "cache" not in answer:
            pytest.skip(f"{key}: libvirt's capabilities cache is missing or stale here; the program was run")
        printed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()[0]
        assert parse_version(answer["version"]) == parse_version(printed), (answer, printed)


@pytest.mark.parametrize("text", [
    "CONFIG_KVM=y\n# CONFIG_KVM_AMD is not set\nCONFIG_BRIDGE=m\nCONFIG_KVM=n\n",
    "CONFIG_BRIDGE=m",  # the last line has no newline
    "a CONFIG_KVM= and CONFIG_BRIDGE= on one line\n\nCONFIG_KVM=\n",
    "",
])
def test_kept_lines_are_those_a_line_by_line_filter_keeps(text):
    from provision.node.probe_files import lines_with

    keep = ["CONFIG_KVM=", "CONFIG_BRIDGE=", "CONFIG_ABSENT="]
    assert lines_with(text, keep) == "".join(line for line in text.splitlines(True) if any(k in line for k in keep))


def test_a_kept_string_spanning_lines_or_empty_keeps_nothing():
    from provision.node.probe_files import lines_with

    assert lines_with("a\nb\n", ["a\nb", ""]) == ""


@pytest.mark.parametrize("family, address", [("AF_INET", "127.0.0.1"), ("AF_INET6", "::1")])
def test_listening_ports_come_from_netlink_and_agree_with_proc(family, address):
    import socket

    from provision.node import probe_devices

    with socket.socket(getattr(socket, family), socket.SOCK_STREAM) as listener, \
            socket.socket(getattr(socket, family), socket.SOCK_STREAM) as bound_only:
        listener.bind((address, 0))
        listener.listen()
        bound_only.bind((address, 0))  # bound, not listening: not a listening port
        port, other = listener.getsockname()[1], bound_only.getsockname()[1]
        answer = probe_devices.op_listening({})
        from_proc = probe_devices._listening_from_proc()
    assert answer["source"] == "sock_diag"
    assert port in answer["ports"] and other not in answer["ports"]
    assert port in from_proc and other not in from_proc  # the fallback reads the same from /proc


@pytest.mark.parametrize("script, message", [
    ("echo hello", "probe printed no answer: 'hello\\n'"),
    ("echo '[1, 2]'", "probe printed no answer: '[1, 2]\\n'"),
    ("echo broken >&2; exit 3", "probe exited 3: broken"),
])
def test_a_node_python_that_does_not_answer_makes_the_node_unreachable_saying_why(tmp_path, script, message):
    from dataclasses import replace

    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    with pytest.raises(Unreachable) as caught:
        gather_facts(replace(parse_host_spec("local://"), python=(str(fake),)), {})
    assert str(caught.value) == message


def test_an_answer_json_cannot_hold_loses_only_its_own_fact(capsys):
    import json

    from provision.node import probe as node_probe

    node_probe.OPS["test_set"] = lambda spec: {"values": {1, 2}}  # an operation answering with a set
    try:
        node_probe.main({"x.set": {"op": "test_set"}, "x.dir": {"op": "listdir", "path": "/proc/self/fd"}})
    finally:
        del node_probe.OPS["test_set"]
    facts = json.loads(capsys.readouterr().out)
    assert facts["x.set"] == {"error": "the probe operation's answer is not JSON: Object of type set is not JSON serializable"}
    assert facts["x.dir"]["names"]


def test_ssh_failing_silently_is_a_one_line_reason_not_a_dump_of_the_program(cli, tmp_path):
    """ssh exits 255 with nothing on stderr (LogLevel=QUIET, a wrapper): the node's error says so in a line."""
    import json

    inv = tmp_path / "site.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_host: 127.0.0.1, ansible_port: 1, "
                   "ansible_ssh_common_args: '-o LogLevel=QUIET -o BatchMode=yes'}\n")
    result = cli("preflight", "-i", str(inv), "-o", "json", "--timeout", "10")
    assert result.exit_code == 1
    host = json.loads(result.stdout)["hosts"][0]
    assert host["error"] == "ssh exited 255 and said nothing on its standard error"
    table = cli("preflight", "-i", str(inv), "--timeout", "10")
    assert "n1: unreachable - ssh exited 255 and said nothing on its standard error" in table.stdout
    assert len(table.stdout) < 2000 and "def main" not in table.stdout


def test_a_long_reason_is_cut_to_a_few_lines_saying_so():
    from provision.remote.probe import brief

    assert brief("short") == "short"
    assert brief("a\nb\nc\nd\ne") == "a\nb\nc [...]"
    assert brief("x" * 1000) == "x" * 300 + " [...]"


def test_the_probes_own_commands_are_not_running_daemons(tmp_path):
    """The probe runs ``libvirtd --version`` while it lists processes: that child is no running libvirtd
    (a node whose libvirtd was down passed the gate now and then)."""
    fake = tmp_path / "pvfakedaemon"  # a name of its own: this machine's libvirtd may well run
    fake.symlink_to("/bin/sleep")  # its comm is the link's name
    elsewhere = subprocess.Popen([str(fake), "30"])  # one the probe did not start: it counts
    try:
        facts = gather_facts(parse_host_spec("local://"), {"run": {"op": "run", "argv": [str(fake), "0.5"]},
                                                           "p": {"op": "processes"}})
        assert facts.answer("run")["rc"] == 0
        assert "pvfakedaemon" in facts.answer("p")["names"]
        elsewhere.kill()
        elsewhere.wait()
        facts = gather_facts(parse_host_spec("local://"), {"run": {"op": "run", "argv": [str(fake), "0.5"]},
                                                           "p": {"op": "processes"}})
        assert facts.answer("run")["rc"] == 0 and "pvfakedaemon" not in facts.answer("p")["names"]
    finally:
        elsewhere.kill()
        elsewhere.wait()


def test_a_session_reads_whole_frames_and_refuses_output_that_is_none():
    """The controller's side of a node session: a frame is taken once whole; output that is not a frame
    (a login banner printed by the node's shell start-up files) is the request's failure, saying what came."""
    from provision.remote.hosts import parse_host_spec
    from provision.remote.session import NodeSession

    session = NodeSession(parse_host_spec("ssh://root@192.0.2.1"))
    session.stdout += b"1"
    assert session._frame() is None  # a length, not yet its newline
    session.stdout += b"0\n={\"ab\": 1"
    assert session._frame() is None  # 9 of the body's 10 bytes
    session.stdout += b"}7\n"
    assert session._frame() == b'={"ab": 1}'
    assert bytes(session.stdout) == b"7\n"  # the next frame's start stays
    assert session._frame() is None
    session.stdout[:] = b"Welcome to node1\n"
    with pytest.raises(Unreachable, match=r"^probe printed no answer: 'Welcome to node1\\n'"):
        session._frame()


def test_the_local_probe_goes_to_a_session_started_ahead():
    """Within a run, the local node's probe is a request to a session started ahead (its Python starts
    and compiles the probe while provision loads its plugins); a Python that is not there fails the
    request with the same reason as a program of its own would."""
    from dataclasses import replace

    from provision.node import PROBE
    from provision.remote.session import sessions

    local = parse_host_spec("local://")
    with sessions() as held:
        held.warm(local, PROBE, timeout=10)
        facts = gather_facts(local, {"os": {"op": "read", "path": "/etc/os-release"}}, timeout=10)
        again = gather_facts(local, {}, timeout=10)
        session = held.of(local)
        assert (session.started, session.requests, session.unanswered) == (1, 2, 0)
        assert facts.answer("_probe")["pid"] == again.answer("_probe")["pid"] == session.proc.pid
        assert "ID=" in facts.answer("os")["text"]
        missing = replace(local, python=("/opt/no-such/python3",))
        held.warm(missing, PROBE, timeout=10)  # nothing to start: the request says why
        with pytest.raises(Unreachable, match=r"^no Python on the node \(looked for /opt/no-such/python3\): .*No such file"):
            gather_facts(missing, {}, timeout=10)
    assert session.proc is None  # ended with the block


def test_a_run_keeps_at_most_its_limit_of_sessions_open():
    """Past the limit, the session used least recently ends, and its node's next request starts another:
    a fleet larger than the limit pays a connection per stage, never a descriptor per node."""
    from dataclasses import replace

    from provision.node import PROBE
    from provision.remote.session import Sessions, session_limit, sessions

    assert 8 <= session_limit() <= 256
    one = replace(parse_host_spec("local://"), python=(sys.executable,))
    two = replace(parse_host_spec("local://"), python=("/usr/bin/python3",))
    with sessions() as held:
        held.limit = 1
        for host in (one, two):  # a local host's probe goes to a session only where one was started ahead
            held.warm(host, PROBE, timeout=10)
        first = gather_facts(one, {}, timeout=10).answer("_probe")["pid"]
        gather_facts(two, {}, timeout=10)
        assert held.of(one).proc is None and held.of(two).proc is not None  # one ended to make room
        again = gather_facts(one, {}, timeout=10).answer("_probe")["pid"]
        # one started three times: ahead, then for each request after the other had taken its room
        assert again != first and (held.of(one).started, held.of(one).requests) == (3, 2)
        assert held.of(two).proc is None
    assert Sessions(limit=3).limit == 3


def test_local_hosts_of_an_inventory_run_their_probe_as_a_program_each():
    """Many local hosts (test inventories have them) keep no Python running each: only the local node
    started ahead gets a session."""
    from provision.remote.session import sessions

    local = parse_host_spec("local://")
    with sessions() as held:
        pids = {gather_facts(local, {}, timeout=10).answer("_probe")["pid"] for _ in range(2)}
        assert len(pids) == 2 and held.open == {}


@pytest.mark.parametrize("interpreter", ["python3;touch {m}", "$(touch {m})", "`touch {m}`", "python3 && touch {m}",
                                         "python3 | touch {m}", "'; touch {m}; '"])
def test_an_inventory_interpreter_never_reaches_the_nodes_shell_as_code(tmp_path, interpreter):
    """ansible_python_interpreter's words are quoted one by one for the node's shell: shell syntax in it
    is a program's name or an argument, never run (here the node's shell is sh on this machine)."""
    marker = tmp_path / "ran"
    command = probe_command(tuple(interpreter.format(m=marker).split())) % shlex.quote("print(1)")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and not marker.exists(), (done.stdout, done.stderr)
