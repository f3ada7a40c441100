"""The real tools that will read rendered files, used to validate them in tests."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path


def virt_xml_validate(path: Path) -> subprocess.CompletedProcess:
    """libvirt's RelaxNG schemas, picked by the document's root element."""
    return subprocess.run(["virt-xml-validate", str(path)], capture_output=True, text=True)


def netplan_generate(yaml_text: str, root: Path) -> subprocess.CompletedProcess:
    """``netplan generate --root-dir``: parses the YAML and writes networkd units under root/run."""
    target = root / "etc" / "netplan" / "60-provision.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml_text)
    target.chmod(0o600)
    return subprocess.run(["netplan", "generate", "--root-dir", str(root)], capture_output=True, text=True)


def nft_check(path: Path) -> subprocess.CompletedProcess:
    """``nft -c -f``, in a network namespace made for it, so this machine's firewall is never touched."""
    ns = f"pvnft-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        return subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", str(path)], capture_output=True, text=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
