"""Hostile connection values: none runs a command here, none becomes an ssh or testinfra option,
none is echoed when it may be a secret. Each case asserts the exit code and the message."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from provision.remote.hosts import HostSpec, parse_host_spec
from provision.remote.ssh import ArgvSshBackend, control_folder
from tests.conftest import provision_bin
from tests.unprivileged import as_nobody


def inventory(tmp_path: Path, host_vars: dict, name: str = "n1") -> str:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {name: host_vars}}}))
    return str(path)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([provision_bin(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


# ansible_ssh_*_args: words with shell syntax are data; words that are not ssh options are refused
INJECTED_ARGS = [
    ("ansible_ssh_common_args", "-o StrictHostKeyChecking=accept-new; touch {marker} #",
     r"'StrictHostKeyChecking=accept-new;' is not an ssh option|'touch' is not an ssh option"),
    ("ansible_ssh_extra_args", "$(touch {marker})", r"'\$\(touch' is not an ssh option"),
    ("ansible_ssh_extra_args", "`touch {marker}`", r"'`touch' is not an ssh option"),
    ("ansible_ssh_common_args", "-o 'ProxyCommand=none", r"cannot be split into ssh arguments: No closing quotation"),
    ("ansible_ssh_common_args", "-Z", r"'-Z': -Z is not an ssh option"),
    ("ansible_ssh_extra_args", "-o", r"ssh option -o needs an argument"),
    ("ansible_ssh_extra_args", "evil.example.org", r"'evil.example.org' is not an ssh option"),
]


@pytest.mark.parametrize(("var", "value", "message"), INJECTED_ARGS, ids=[v for _, v, _ in INJECTED_ARGS])
def test_ssh_arguments_that_are_not_ssh_options_are_refused(tmp_path, var, value, message):
    marker = tmp_path / "marker"
    inv = inventory(tmp_path, {"ansible_host": "127.0.0.1", var: value.format(marker=marker)})
    result = run("preflight", "-i", inv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{inv}: host n1: {var}: " in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_shell_syntax_inside_an_ssh_option_is_one_argument_and_runs_nothing(tmp_path):
    """Accepted as options, the words reach ssh one by one (no shell): the node is merely unreachable."""
    marker = tmp_path / "marker"
    inv = inventory(tmp_path, {
        "ansible_host": "127.0.0.1", "ansible_port": 1,  # refused at once
        "ansible_ssh_common_args": f'-o "SendEnv=X$(touch {marker})" -o ConnectTimeout=3',
        "ansible_ssh_extra_args": f"-b '`touch {marker}`;touch {marker}' -o 'SetEnv=A=$(touch {marker})'",
    })
    result = run("preflight", "-i", inv, "-o", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert '"reachable": false' in result.stdout
    assert not marker.exists()


def test_the_ssh_argument_vector_is_built_from_parts():
    spec = HostSpec(name="n1", scheme="ssh", address="192.0.2.1", user="ops", port=2202,
                    identity_file="/k/id", ssh_args=("-o", "SendEnv=$(x)"), control_path="/c/%C")
    argv = ArgvSshBackend(spec, timeout=7).argv("uptime")
    assert argv == ["ssh", "-o", "SendEnv=$(x)", "-o", "User=ops", "-o", "Port=2202", "-i", "/k/id",
                    "-o", "ConnectTimeout=7", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                    "-o", "ControlPath=/c/%C", "--", "192.0.2.1", "uptime"]
    # the inventory's own ControlPath / ConnectTimeout win, as in testinfra
    own = ArgvSshBackend(HostSpec(name="n1", scheme="ssh", address="n1", control_path="/c/%C",
                                  ssh_args=("-oControlPath=/mine/%C", "-o", "connecttimeout 2")), timeout=7).argv("x")
    assert own == ["ssh", "-oControlPath=/mine/%C", "-o", "connecttimeout 2", "--", "n1", "x"]


# host, ansible_host, ansible_user, ansible_port: exactly a host, a user, a port
BAD_VALUES = [
    ({"ansible_host": "192.0.2.1?ssh_config=/tmp/evil.cfg"}, "ansible_host", r"'\?' cannot be in one"),
    ({"ansible_host": "192.0.2.1?sudo=true"}, "ansible_host", r"'\?' cannot be in one"),
    ({"ansible_host": "node%41"}, "ansible_host", r"'%' cannot be in one"),
    ({"ansible_host": "node#frag"}, "ansible_host", r"'#' cannot be in one"),
    ({"ansible_host": "-oProxyCommand=touch"}, "ansible_host", r"'=' cannot be in one"),
    ({"ansible_host": "-node"}, "ansible_host", r"none starting or ending with '-'"),
    ({"ansible_host": "node one"}, "ansible_host", r"' ' cannot be in one"),
    ({"ansible_host": "node\n1"}, "ansible_host", r"'\\n' cannot be in one"),
    ({"ansible_host": "ops@node1"}, "ansible_host", r"'@' cannot be in one"),
    ({"ansible_user": "ops:pw"}, "ansible_user", r"'user:password' is not taken \(use a key; the value is not shown\)"),
    ({"ansible_user": "alice@corp.example"}, "ansible_user", r"'user@host' is not taken"),
    ({"ansible_user": "-oProxyCommand=x"}, "ansible_user", r"must be a user name"),
    ({"ansible_port": "22?x=y"}, "ansible_port", r"must be a port number"),
    ({"ansible_port": True}, "ansible_port", r"must be a port number"),
    ({"ansible_python_interpreter": "python3\ntouch /tmp/x"}, "ansible_python_interpreter", r"on one line"),
    ({"ansible_connection": "docker", "ansible_host": "c1;touch"}, "ansible_host", r"must be a container name"),
]


@pytest.mark.parametrize(("host_vars", "var", "message"), BAD_VALUES, ids=[str(v) for v, _, _ in BAD_VALUES])
def test_connection_values_are_exactly_what_they_name(tmp_path, cli, host_vars, var, message):
    inv = inventory(tmp_path, host_vars)
    result = cli("inventory", "validate", "-i", inv)
    assert result.exit_code == 2
    assert f"{inv}: host n1: {var}: " in result.stderr
    assert re.search(message, result.stderr), result.stderr
    # ops:pw is never shown (the temporary folder's random name may hold "pw" by chance: it is left out)
    assert "pw" not in result.stderr.replace(str(tmp_path), "").replace("password", "")


@pytest.mark.parametrize("name", ["n1\nflush ruleset\n#", "n1?ssh_config=x", "-n1", ".old-cmp1", "a" * 300,
                                  "n1 n2", "n1\x07", "n1/../x"])
def test_host_names_are_host_names(tmp_path, cli, name):
    inv = inventory(tmp_path, {"ansible_connection": "local"}, name=name)
    result = cli("inventory", "validate", "-i", inv)
    assert result.exit_code == 2
    assert f"{inv}: host " in result.stderr and "must be a host name or an IPv4/IPv6 address" in result.stderr
    assert "\nflush" not in result.stderr  # quoted, never a new line of output


@pytest.mark.parametrize(("spec", "message"), [
    ("ssh://[::1", "an IPv6 address in \\[...\\] must be followed"),
    ("ssh://node1?ssh_config=/tmp/evil.cfg", "only \\[USER@\\]HOST\\[:PORT\\] may follow ssh://"),
    ("ssh://node1#x", "only \\[USER@\\]HOST\\[:PORT\\]"),
    ("ssh://ops:pw@node1", "'user:password' is not taken"),
    ("ssh://node1:99999", "must be a port number 1-65535"),
    ("ssh://-oProxyCommand=x", "'=' cannot be in one"),
    ("local://node1", "local:// names no host"),
])
def test_bad_host_specs_are_input_errors(cli, spec, message):
    result = cli("preflight", "-H", spec)
    assert result.exit_code == 2
    assert f"host spec {spec!r}: " in result.stderr
    assert re.search(message, result.stderr), result.stderr


def test_ipv6_and_ports_in_host_specs():
    spec = parse_host_spec("ssh://ops@[2001:db8::1]:2202")
    assert (spec.address, spec.user, spec.port, spec.name, spec.spec) == (
        "2001:db8::1", "ops", 2202, "[2001:db8::1]:2202", "ssh://ops@[2001:db8::1]:2202")


def test_a_pasted_key_is_never_echoed(tmp_path, cli):
    key = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"  # one line, no header
    inv = inventory(tmp_path, {"ansible_ssh_private_key_file": key})
    result = cli("inventory", "validate", "-i", inv)
    assert result.exit_code == 2
    assert "ansible_ssh_private_key_file: names no key file on this machine (the value is not shown" in result.stderr
    assert key not in result.output and key[:20] not in result.output


@pytest.mark.root  # makes folders owned by another user
def test_the_control_folder_is_private_and_ours(tmp_path):
    uid = os.getuid()
    (tmp_path / "a").mkdir()
    fresh = control_folder.__wrapped__(str(tmp_path / "a"))
    assert fresh == f"{tmp_path}/a/provision-ssh-{uid}"
    st = os.stat(fresh)
    assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o700)
    assert control_folder.__wrapped__(str(tmp_path / "a")) == fresh  # ours: used again

    # made first by someone else, or opened to others, or a symlink: never used
    for case in ("open", "nobody", "symlink"):
        base = tmp_path / case
        base.mkdir()
        planted = base / f"provision-ssh-{uid}"
        if case == "symlink":
            (base / "elsewhere").mkdir(mode=0o700)
            planted.symlink_to(base / "elsewhere")
        else:
            planted.mkdir()
            os.chmod(planted, 0o777 if case == "open" else 0o700)
            if case == "nobody":
                os.chown(planted, 65534, 65534)
        chosen = control_folder.__wrapped__(str(base))
        assert chosen != str(planted) and Path(chosen).parent == base
        st = os.lstat(chosen)
        assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o700), case


@pytest.mark.root  # drops from root to nobody
def test_the_control_folder_as_an_unprivileged_user():
    import shutil
    import tempfile

    base = tempfile.mkdtemp(dir="/tmp")  # a /tmp of its own that nobody can reach
    try:
        os.chmod(base, 0o1777)
        os.mkdir(f"{base}/provision-ssh-65534", 0o700)  # planted by root
        out = as_nobody(lambda: control_folder.__wrapped__(base))
        assert out.startswith(f"{base}/provision-ssh-65534-")
        assert os.stat(out).st_uid == 65534 and os.stat(out).st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(base)


# ansible:// and docker://: testinfra's own backends for them run shell command lines on this machine


def ansible_env(tmp_path: Path, hosts: dict) -> dict:
    """Ansible configured (ANSIBLE_INVENTORY) with these hosts, and ansible-inventory on PATH, as where
    testinfra's ansible:// backend would have put an inventory value into a shell command line."""
    path = tmp_path / "configured.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    bin_dir = str(Path(provision_bin()).parent)
    return {**os.environ, "ANSIBLE_INVENTORY": str(path), "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_an_ansible_spec_is_read_as_an_inventory_host_and_its_hostile_ssh_args_run_nothing(tmp_path):
    mark = tmp_path / "PWNED"
    env = ansible_env(tmp_path, {"evil": {"ansible_host": "127.0.0.1",
                                          "ansible_ssh_extra_args": f"-o ConnectTimeout=1; touch {mark} #"}})
    done = subprocess.run([provision_bin(), "preflight", "-H", "ansible://evil"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert (f"{tmp_path}/configured.yml: host evil: ansible_ssh_extra_args: 'touch' is not an ssh option"
            in done.stderr), done.stderr
    assert not mark.exists()


def test_an_ansible_spec_takes_the_hosts_connection_and_settings(tmp_path):
    env = ansible_env(tmp_path, {"here": {"ansible_connection": "local", "provision": {"virt_type": "kvmm"}}})
    argv = [provision_bin(), "preflight", "-H", "ansible://here", "-H", "local://", "-o", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2  # its settings are the inventory's, validated as -i validates them
    assert (f"{tmp_path}/configured.yml: host here: provision.virt_type: must be one of auto, kvm, qemu (got 'kvmm')"
            in done.stderr), done.stderr
    env = ansible_env(tmp_path, {"here": {"ansible_connection": "local", "provision": {"virt_type": "auto"}}})
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    hosts = json.loads(done.stdout)["hosts"]
    assert [(h["host"], h["reachable"]) for h in hosts] == [("here", True), ("localhost", True)]


@pytest.mark.parametrize("configured, host, message", [
    ("configured.yml", "nope", r"configured\.yml \(Ansible's configured inventory\) has no host 'nope'; hosts: here$"),
    ("missing.yml", "here", r"^provision: error: ansible://here: Ansible's configured inventory \(.*/missing\.yml\): "
                            r"it does not exist; give the inventory with -i INVENTORY -l HOST$"),
])
def test_an_ansible_spec_without_its_host_is_an_input_error(tmp_path, configured, host, message):
    env = ansible_env(tmp_path, {"here": {"ansible_connection": "local"}})
    env["ANSIBLE_INVENTORY"] = str(tmp_path / configured)
    done = subprocess.run([provision_bin(), "preflight", "-H", f"ansible://{host}"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert re.search(message, done.stderr.strip()), done.stderr


def test_a_docker_node_is_reached_from_an_argument_vector(tmp_path):
    """docker is here, its daemon is not: a stand-in ``docker`` records its arguments and runs the
    command it is given, so the probe runs and each argument is seen as docker gets it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv"
    (bin_dir / "docker").write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > {log}\nshift 3\nexec "$@"\n')
    (bin_dir / "docker").chmod(0o755)
    done = subprocess.run([provision_bin(), "preflight", "-H", "docker://c1", "-o", "json"], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, timeout=120)
    assert '"reachable": true' in done.stdout, done.stdout + done.stderr
    argv = log.read_text().split("\0")[:-1]
    assert argv[:5] == ["exec", "-i", "c1", "/bin/sh", "-c"] and len(argv) == 6
    assert argv[5].startswith("sh -c ")  # the probe's command line, for the container's shell
