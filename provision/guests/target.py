"""Which hypervisor a guest command talks to, and with which virt_type: --connect, or a node of -i/-l."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlparse

from provision.errors import InputError, Unreachable
from provision.guests import DEFAULT_URI
from provision.remote.hosts import HostSpec, Node, parse_host_spec
from provision.results import Decision

NodeUnreachable = Unreachable  # the node could not be probed, so its virt_type is unknown

@dataclass(frozen=True)
class GuestTarget:
    uri: str
    node: Node | None  # None: a URI whose node cannot be probed (not local, not SSH)
    pinned_virt_type: str | None = None

    def virt_type(self, hooks, *, timeout: float = 30) -> str:
        return self.decision(hooks, timeout=timeout).virt_type

    def decision(self, hooks, *, timeout: float = 30, functional: float | None = None) -> Decision:
        """qemu when pinned so; otherwise the node's preflight decision, and a pinned kvm must match it:
        never kvm on a node that decided qemu. ``functional``: the preflight boots the canary too (each
        boot bounded by that many seconds), and the decision takes the boots into account."""
        pinned = self.pinned_virt_type if self.pinned_virt_type != "auto" else None
        if pinned == "qemu":
            return Decision("qemu", "none", ("virt_type is pinned to qemu",))
        from provision.stages.preflight import preflight

        if self.node is None:
            raise InputError(f"cannot probe the node behind {self.uri} to decide virt_type: pass --virt-type qemu")
        host = preflight(nodes=[self.node], hooks=hooks, timeout=timeout, functional=functional,
                         settings_probes=False).hosts[0]
        if not host.reachable:
            raise NodeUnreachable(f"cannot decide virt_type for {self.node.name}: {host.error}; pass --virt-type qemu")
        if host.decision is None:  # every decision plugin disabled, or none answered
            raise InputError(f"no plugin decided virt_type for {self.node.name} (is the kvm plugin disabled?); "
                             "pass --virt-type qemu or kvm")
        if pinned == "kvm" and host.decision.virt_type != "kvm":
            raise InputError(f"virt_type kvm was asked for, but {self.node.name} decided {host.decision.virt_type}: "
                             + "; ".join(host.decision.reasons))
        return host.decision


def uri_for(spec: HostSpec) -> str:
    """The libvirt URI of a node reached by a host spec."""
    if spec.is_local:
        return DEFAULT_URI
    if spec.scheme not in ("ssh", "paramiko"):
        raise InputError(f"{spec.name}: guests are managed over SSH or locally, not over {spec.scheme}://")
    params = []
    if spec.identity_file:
        params.append(f"keyfile={quote(spec.identity_file)}")
    if "StrictHostKeyChecking=no" in spec.ssh_args:
        params.append("no_verify=1")
    return f"qemu+ssh://{spec.netloc}/system" + ("?" + "&".join(params) if params else "")


def spec_for_uri(uri: str) -> HostSpec | None:
    """The host spec to probe the node of a libvirt URI, or None where only libvirt reaches it."""
    from dataclasses import replace
    from urllib.parse import parse_qs

    try:
        parsed = urlparse(uri)
    except ValueError as exc:
        raise InputError(f"--connect {uri!r}: not a libvirt URI: {exc}") from None
    if not parsed.netloc:
        return parse_host_spec("local://")
    if parsed.scheme not in ("qemu+ssh", "qemu+libssh", "qemu+libssh2"):
        return None
    query = parse_qs(parsed.query)
    spec = parse_host_spec(f"ssh://{parsed.netloc}")
    args: tuple[str, ...] = ()
    if query.get("no_verify", ["0"])[0] == "1":  # libvirt's own meaning: do not check the host key
        args = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")
    return replace(spec, identity_file=query.get("keyfile", [""])[0], ssh_args=args)


def resolve_target(*, connect: str | None, inventory: str | None, limit: str | None, virt_type: str | None,
                   hooks) -> GuestTarget:
    if connect and inventory:
        raise InputError("use either --connect or --inventory/-i, not both")
    if inventory:
        from provision.inventory.select import select_nodes

        nodes = select_nodes(inventory=inventory, limit=limit, hooks=hooks).nodes
        if len(nodes) != 1:
            raise InputError(f"-i/-l must select exactly one node for a guest command (selected {len(nodes)}: "
                             f"{', '.join(n.name for n in nodes[:10])}); narrow it with --limit")
        node = nodes[0]
        pinned = virt_type if virt_type not in (None, "auto") else node.settings["virt_type"]
        return GuestTarget(uri_for(node.spec), node, pinned)
    uri = connect or DEFAULT_URI
    spec = spec_for_uri(uri)
    return GuestTarget(uri, Node(spec) if spec else None, virt_type)
