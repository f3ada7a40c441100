"""From a fresh OS to a compute node: ``provision apply`` on a bare Debian 12 node (tests/freshnode.py)
installs QEMU and libvirt with the node's own apt, makes /dev/kvm root:kvm 0660, starts libvirt's
daemons, writes the modules file, defines a NAT network and an iscsi-direct pool on Debian's tgt (on the
controller's side of the veth); then ``smoke`` boots the canary there, ``verify`` finds no drift, and a
second apply changes and installs nothing. The faults: no package manager, a held lock, a package the
mirror lacks, an unreachable mirror, an install killed midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import ROOT, provision_bin

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.mirror]
TARGET = "iqn.2026-12.com.example:bootstrap"
NAT = {"name": "guests", "bridge": "virbr9", "subnet": "192.168.209.0/24", "gateway": "192.168.209.1"}


def inventory(net, settings: dict, name: str = "site.yml") -> str:
    data = net.inventory_data()
    data["all"]["vars"]["provision"] = settings
    return str(net.write_inventory(data, name))


def provision(net, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(net.client_argv(provision_bin(), *args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def apply_json(net, inv: str, *args: str, **kwargs) -> tuple[subprocess.CompletedProcess, dict]:
    result = provision(net, "apply", "-i", inv, "-o", "json", *args, **kwargs)
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    return result, json.loads(result.stdout)["hosts"][0]


def kinds(host: dict, *names: str) -> dict[str, str]:
    return {s["target"]: s["action"] for s in host["steps"] if s["kind"] in names}


def installed(node, package: str) -> bool:
    return "install ok installed" in node.run("dpkg-query", "-W", "-f", "${Status}", package).stdout


def nothing_configured(node) -> None:
    """None of the configuration was applied: no state record, no rendered file."""
    for path in ("/var/lib/provision/state.json", "/etc/provision", "/etc/modules-load.d/provision.conf",
                 "/etc/nova"):
        assert not node.path(path).exists(), path


@pytest.fixture
def san(net, tmp_path):
    """Debian's tgtd in the controller's namespace (its /run its own), with one 64 MiB LUN, on the bridge."""
    lun = tmp_path / "lun.img"
    with open(lun, "wb") as fh:
        fh.truncate(64 << 20)
    script = f"""mount -t tmpfs tmpfs /run && tgtd -f & sleep 0.5;
        tgtadm --lld iscsi --op new --mode target --tid 1 -T {TARGET} &&
        tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b {lun} &&
        tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL && touch {tmp_path / 'san-ready'} && wait"""
    proc = subprocess.Popen(net.client_argv("unshare", "-m", "--propagation", "private", "sh", "-c", script),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    for _ in range(100):
        if (tmp_path / "san-ready").exists():
            break
        time.sleep(0.1)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"tgtd did not start: {proc.stderr.read().decode()}")
    yield f"{net.subnet}.1:3260"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_bare_node_becomes_a_compute_node_that_boots_a_guest(bare, net, san):
    node = bare
    inv = inventory(net, {"network": {"nat": [NAT]}, "storage": [
        {"name": "san1", "type": "iscsi", "direct": True, "portal": san, "target": TARGET,
         "initiator": "iqn.2026-12.com.example:bare1"}]})
    assert node.sh("stat -c '%U:%G %a' /dev/kvm").split() == ["root:root", "600"]  # as without udev rules

    # the plan: what would be installed, loaded and started, and the files, changing nothing
    result, plan = apply_json(net, inv, "--check")
    assert result.returncode == 3, result.stderr
    packages = kinds(plan, "package")
    assert {"qemu-system-x86", "qemu-utils", "libvirt-daemon-system", "libvirt-clients", "dnsmasq-base",
            "libvirt-daemon-driver-storage-iscsi-direct", "qemu-block-extra"} <= set(packages)
    assert set(packages.values()) == {"install"}
    assert all("not rolled back" in s["why"] for s in plan["steps"] if s["kind"] == "package")
    assert kinds(plan, "device") == {"/dev/kvm": "update"}
    assert kinds(plan, "service") == {"virtlogd": "start", "libvirtd": "start"}
    assert kinds(plan, "file")["/etc/modules-load.d/provision.conf"] == "create"
    assert kinds(plan, "network", "pool") == {"guests": "create", "san1": "create"}
    assert not installed(node, "libvirt-daemon-system")
    nothing_configured(node)

    # from bare to converged, in one run
    result, host = apply_json(net, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(kinds(host, "package").values()) == {"install"}
    assert installed(node, "qemu-system-x86") and installed(node, "libvirt-daemon-driver-storage-iscsi-direct")
    assert node.sh("stat -c '%U:%G %a' /dev/kvm").split() == ["root:kvm", "660"]
    assert node.run("pgrep", "-x", "libvirtd").returncode == 0
    assert node.path("/etc/modules-load.d/provision.conf").read_text().splitlines()[1:] == ["vhost_net"]
    assert 'GROUP="kvm", MODE="0660"' in node.path("/etc/udev/rules.d/65-provision-kvm.rules").read_text()
    assert "guests" in node.run("virsh", "-q", "net-list", "--name").stdout.split()
    assert "running" in node.run("virsh", "pool-info", "san1").stdout
    assert f"ip-{san}-iscsi-{TARGET}-lun-1" in node.run("virsh", "vol-list", "san1").stdout

    smoke = provision(net, "smoke", "-i", inv, "-o", "json")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    check = json.loads(smoke.stdout)["hosts"][0]["checks"][0]
    assert (check["id"], check["status"]) == ("smoke.boot", "pass") and "under qemu" in check["message"]

    verify = provision(net, "verify", "-i", inv)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    again, host = apply_json(net, inv)
    assert again.returncode == 0, again.stderr
    assert {s["action"] for s in host["steps"]} == {"unchanged"}  # no package, module, device or daemon step


def test_no_remedies_keeps_the_refusal(bare, net):
    inv = inventory(net, {"remedies": False})
    result, host = apply_json(net, inv)
    assert result.returncode == 1
    assert host["error"].startswith("refused by preflight, nothing was changed: ")
    assert "qemu.binary: no QEMU system emulator" in host["error"]
    assert "(apply would fix it, but remedies are off)" in host["error"]
    nothing_configured(bare)
    result, host = apply_json(net, inventory(net, {}, "on.yml"), "--no-remedies")
    assert result.returncode == 1 and "remedies are off" in host["error"]


def test_a_node_with_neither_apt_nor_dnf_is_refused_naming_what_was_found(bare, net):
    bare.sh("mv /usr/bin/apt-get /usr/bin/apt-get.moved")
    result, host = apply_json(net, inventory(net, {}))
    assert result.returncode == 1
    assert host["error"].startswith("remedies refused, no configuration was changed: package manager: the node "
                                    "has neither apt-get nor dnf (ID=debian VERSION_ID=12); install the packages "
                                    "with its own package manager: debian: libvirt-daemon-system"), host["error"]
    nothing_configured(bare)


def test_a_held_lock_is_waited_for_then_named(bare, net):
    holder = subprocess.Popen(["nsenter", "-t", str(bare.pid), "-m", "-n", "-p", "-r", "-w", "python3", "-c",
                               "import fcntl, time\nf = open('/var/lib/dpkg/lock-frontend', 'w')\n"
                               "fcntl.lockf(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        start = time.monotonic()
        result, host = apply_json(net, inventory(net, {}), "--timeout", "5")
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend)" in host["error"]
    assert "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process" in host["error"]
    assert "(python3)" in host["error"]  # the holder, named
    assert waited >= 5
    assert not installed(bare, "libvirt-daemon-system")
    nothing_configured(bare)


def test_a_package_the_mirror_lacks_fails_with_apts_reason(bare, net):
    env = {"PROVISION_PLUGINS": "tests.fixture_plugins.missing_package", "PYTHONPATH": str(ROOT)}
    result, host = apply_json(net, inventory(net, {}), env=env)
    assert result.returncode == 1
    assert "apt-get install failed (exit 100): E: Unable to locate package provision-test-no-such-package" in host["error"]
    assert kinds(host, "package")["provision-test-no-such-package"] == "failed"
    assert not installed(bare, "libvirt-daemon-system")  # one install, all or nothing
    nothing_configured(bare)


def test_an_unreachable_mirror_fails_clearly(tmp_path, apt_proxy, net):
    from tests.freshnode import FreshNode

    node = FreshNode(tmp_path / "bare1", apt_proxy, mirror="http://mirror.invalid/debian")
    try:
        node.attach(net, "bare1")
        result, host = apply_json(net, inventory(net, {}))
        assert result.returncode == 1
        assert ("apt-get update failed (exit 100): the node's package sources cannot be read: "
                "E: Failed to fetch http://mirror.invalid/debian/dists/bookworm/InRelease") in host["error"]
        nothing_configured(node)
    finally:
        node.stop()


def test_an_install_killed_midway_converges_on_the_next_apply(bare, net):
    inv = inventory(net, {})
    apply = subprocess.Popen(net.client_argv(provision_bin(), "apply", "-i", inv), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until dpkg unpacks
            if bare.run("pgrep", "-x", "dpkg").returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("dpkg never ran")
        apply.send_signal(signal.SIGTERM)
        apply.wait(timeout=30)
        # the install dies with it: dpkg is left half done, as after a lost connection and a reboot
        bare.run("pkill", "-9", "-x", "apt-get")
        bare.run("pkill", "-9", "-x", "dpkg")
    finally:
        apply.kill()
        apply.wait()
    assert apply.returncode != 0
    result, host = apply_json(net, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(bare, "libvirt-daemon-system")
    again, host = apply_json(net, inv)
    assert again.returncode == 0 and {s["action"] for s in host["steps"]} == {"unchanged"}
