"""Benchmark: preflight of 32 namespace hosts over SSH, beside plain ssh and Ansible fact gathering.

    .venv/bin/python bench/fleet.py [--hosts 32] [--runs 5]

Builds the hosts as the tests do (network namespaces, each with its own sshd), then times,
in the same run and from inside the client namespace:
  provision  provision preflight -i INV --forks N -o json, cold (new SSH connections) and warm
             (reusing the ssh master connections provision keeps for 60 s)
  ssh        plain parallel `ssh host true`, one per host (the floor: the SSH handshake)
  ansible    ansible all -i INV -m setup --forks N (the ansible-core provision itself depends on)
  playbook   ansible-playbook of the provision.compute collection's preflight task, --forks N (one
             module run per host, as setup is)
and prints nodes per second, the median per node, and the ratios. Targets: provision within 1.5x of
plain ssh; the collection's playbook within 1.5x of ansible -m setup.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.testhosts import HostNetwork  # noqa: E402

PROVISION = str(Path(sys.executable).with_name("provision"))


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[:6]} exited {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed


def plain_ssh(net: HostNetwork) -> list[str]:
    """A shell line that runs `ssh host true` on every host at once and waits for all."""
    cmds = [f"ssh -i {net.key} {net.ssh_args()} root@{h['address']} true &" for h in net.hosts.values()]
    return ["sh", "-c", " ".join(cmds) + " wait"]


def ensure_ansible() -> Path | None:
    """Ansible's own command, from the ansible-core provision runs on (its inventory engine)."""
    ansible = Path(sys.executable).with_name("ansible")
    if not ansible.exists():
        print(f"{ansible} is missing: no ansible -m setup figure")
        return None
    return ansible


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ansible = ensure_ansible()
    with HostNetwork("pvb", subnet="10.214.0") as net:
        for i in range(args.hosts):
            net.add_sshd_host(f"node{i + 1:02d}")
        inv = net.write_inventory()
        subprocess.run(net.client_argv(*plain_ssh(net)), capture_output=True)  # fill known_hosts
        runs: dict[str, list[float]] = {"provision": [], "provision-warm": [], "ssh": [], "ansible": [], "playbook": []}
        book = net.dir / "preflight.yml"
        book.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - provision.compute.preflight: {ignore: [all]}\n")
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
               "ANSIBLE_GATHERING": "explicit", "ANSIBLE_LOCALHOST_WARNING": "False",
               "ANSIBLE_PIPELINING": "True"}  # both Ansible runs: the module on ssh's standard input, no copy
        preflight = net.client_argv(PROVISION, "preflight", "-i", str(inv), "-o", "json", "--forks", str(args.hosts))
        for _ in range(args.runs):
            # cold: no ssh master connection is left from an earlier run, as for plain ssh
            subprocess.run(["pkill", "-f", "ssh: /tmp/provision-ssh-"], capture_output=True)
            runs["provision"].append(timed(preflight))
            runs["provision-warm"].append(timed(preflight))  # the masters of the cold run are reused
            runs["ssh"].append(timed(net.client_argv(*plain_ssh(net))))
            if ansible:
                runs["ansible"].append(timed(net.client_argv(str(ansible), "all", "-i", str(inv), "-m", "setup",
                                                             "--forks", str(args.hosts)), env=env))
                runs["playbook"].append(timed(net.client_argv(str(ansible.with_name("ansible-playbook")), "-i", str(inv),
                                                              str(book), "--forks", str(args.hosts)),
                                              env={**env, "ANSIBLE_COLLECTIONS_PATH": str(ROOT)}))
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    n = args.hosts
    print(f"{n} hosts, {args.runs} runs each, median wall time of a whole fleet run:")
    for name, seconds in med.items():
        print(f"  {name:<15} {seconds:6.2f} s   {n / seconds:6.1f} nodes/s   {seconds / n * 1000:6.1f} ms per node")
    print(f"ratio provision (cold) / plain ssh = {med['provision'] / med['ssh']:.2f} (target <= 1.5)")
    if "ansible" in med:
        print(f"ratio ansible / provision  = {med['ansible'] / med['provision']:.2f} (provision is that many times faster)")
        print(f"ratio collection playbook / ansible -m setup = {med['playbook'] / med['ansible']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
