"""The plugin API: the types hooks take and return (see :mod:`provision.hookspecs`).

Every plugin imports these; they depend on nothing of provision's but its results, so
``hookspecs`` imports them at run time and orchestration lives elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from provision.results import Decision

LIBVIRT_DIR = "/etc/provision/libvirt"  # pool, secret and network XML: apply defines the objects from here


@dataclass(frozen=True)
class LibvirtKind:
    """A kind of libvirt object that ``apply`` defines, described as data: the built-in network, secret
    and pool are :data:`BUILTIN_KINDS`; a plugin adds one (``nwfilter``) through
    :func:`~provision.hookspecs.provision_libvirt_kinds`, with no change to the core.

    :param name: the kind (``nwfilter``).
    :param verbs: its ``virsh`` commands: ``dump`` (a list: the command and its options), ``define``,
        ``undefine``, ``list``; for a startable kind also ``start``, ``destroy``, ``autostart``, ``info``.
    :param startable: the object runs (started, restarted when redefined, set to autostart).
    :param identity: ``name`` (its ``<name>``), or ``uuid`` (its ``<uuid>``, else found by its usage in
        ``virsh list``, as secrets are).
    :param holds_value: a value is set into it from a file on the node (a secret's).
    :param folder_types: its types whose ``<target><path>`` is a folder it makes or mounts on (never a
        system folder, nor another's).
    :param used_by: how running guests use one: ``network`` (an interface's source), ``pool`` (a
        disk's source pool or a path under its folder); empty for none.
    :param element: its XML's root element, where that is not its name (an nwfilter's is ``filter``).
    """

    name: str
    verbs: dict[str, Any]
    startable: bool = True
    identity: Literal["name", "uuid"] = "name"
    holds_value: bool = False
    folder_types: tuple[str, ...] = ()
    used_by: Literal["", "network", "pool"] = ""
    element: str = ""

    @property
    def root(self) -> str:
        return self.element or self.name


BUILTIN_KINDS = (  # the order apply defines them in: what a later kind refers to comes first
    LibvirtKind("network", {"dump": ["net-dumpxml", "--inactive"], "define": "net-define", "start": "net-start",
                            "autostart": "net-autostart", "destroy": "net-destroy", "undefine": "net-undefine",
                            "info": "net-info", "list": "net-list"}, used_by="network"),
    LibvirtKind("secret", {"dump": ["secret-dumpxml"], "define": "secret-define", "undefine": "secret-undefine",
                           "list": "secret-list"}, startable=False, identity="uuid", holds_value=True),
    LibvirtKind("pool", {"dump": ["pool-dumpxml", "--inactive"], "define": "pool-define", "start": "pool-start",
                         "autostart": "pool-autostart", "destroy": "pool-destroy", "undefine": "pool-undefine",
                         "info": "pool-info", "list": "pool-list", "build": "pool-build"},
                folder_types=("dir", "fs", "netfs"), used_by="pool"),
)
LIBVIRT_KINDS = tuple(k.name for k in BUILTIN_KINDS)  # the built-in kinds' names, in that order


@dataclass(frozen=True)
class RenderedFile:
    """One file for a node: where it goes, what it holds, who made it.

    """

    target: str
    content: str
    mode: str = "0644"
    plugin: str = ""

    @property
    def relative(self) -> str:
        return self.target.lstrip("/")


@dataclass(frozen=True)
class RenderContext:
    """What a plugin's renderer sees of one node."""

    host: str
    settings: dict[str, Any]
    decision: Decision | None
    is_local: bool
    hooks: Any = field(repr=False, compare=False)  # the façade, for renderers that gather from other plugins
    _render: Callable[..., str] = field(repr=False, compare=False)

    @property
    def virt_type(self) -> str:
        """``virt_type`` as pinned by the inventory, else as the node's preflight decided."""
        pinned = self.settings["virt_type"]
        return self.decision.virt_type if pinned == "auto" and self.decision else pinned

    @property
    def decided_cpu_mode(self) -> str:
        """The decision's ``cpu_mode`` when it decided this ``virt_type``, else nova's default for it."""
        if self.decision and self.decision.virt_type == self.virt_type:
            return self.decision.cpu_mode
        return "host-model" if self.virt_type == "kvm" else "none"

    def render(self, template: str, **values: Any) -> str:
        text = self._render(template, host=self.host, settings=self.settings, **values)
        return text if text.endswith("\n") else text + "\n"



@dataclass(frozen=True)
class LibvirtObject:
    """A libvirt object that a plugin's rendered XML defines, named by that file's target.

    ``provision apply`` defines it from the file (when the fields it sets differ from the live
    object's), starts it and sets it to autostart (networks, pools), and ``provision verify``
    reports its drift. The object's name (or a secret's UUID or usage) is read from the XML.

    :param kind: ``network``, ``secret`` or ``pool``: the XML's root element.
    :param file: the rendered file's target, under :data:`LIBVIRT_DIR`.
    :param build: a pool that ``pool-build`` makes before its first start (a logical pool's
        volume group); a build that fails because it was built already is not an error.
    :param value_file: a secret's value: the file on the node that holds it, read there at apply
        time (never by the controller), and set when its digest changed.
    :param value_format: how ``value_file`` holds the value: ``base64`` (a Ceph key) or ``plain``
        (a CHAP password).
    """

    kind: str
    file: str
    build: bool = False
    value_file: str = ""
    value_format: str = "base64"


@dataclass(frozen=True)
class NodeStep:
    """A change ``provision apply`` makes on the node by running the plugin's own code there, before
    any libvirt object (the host network, through netlink).

    :param name: the step's name, also the ``kind`` of its report lines (``host-network``).
    :param agent: the path of a Python module (stdlib, and what the node has installed) that the apply
        agent runs on the node. It defines ``plan(spec, owned, context)`` → ``{"changes": [{target,
        action, why}], "refused": [{target, why}]}``; ``snapshot(spec)`` → the live state it may change;
        ``apply(spec, owned, context)`` → what it now owns (kept in the node's state record);
        ``restore(snapshot, spec)`` → what still differs after putting the snapshot back; and, for a
        guarded step, ``probes(snapshot)`` and ``confirm(probes)`` → problems.
    :param spec: what the step is to make, as JSON data (it goes to the node so; anything else is refused).
    :param guarded: the change can cut the node off from the controller: a rollback is armed on the
        node before the first change, and only the controller's confirmation over a new connection,
        with the probes passing, disarms it.
    :param phase: when the step runs in the apply: ``before_objects`` (the default: before libvirt's
        networks, secrets and pools, which may use what it makes) or ``after_files`` (after the
        rendered files are written, for a step that acts on them, e.g. reloading a daemon). A guarded
        step runs ``before_objects``.
    """

    name: str
    agent: str
    spec: dict[str, Any]
    guarded: bool = False
    phase: Literal["before_objects", "after_files"] = "before_objects"

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"NodeStep {self.name}: phase must be one of {', '.join(PHASES)} (got {self.phase!r})")
        if self.guarded and self.phase != "before_objects":
            raise ValueError(f"NodeStep {self.name}: a guarded step runs before_objects")
        json_data(self.spec, f"NodeStep {self.name}: spec")


PHASES = ("before_objects", "after_files")


def json_data(value: Any, what: str) -> None:
    """A ValueError where ``value`` is not JSON data: what goes to a node (probe operations, step specs)
    travels as JSON."""
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON data ({exc}); a node is sent plain data only") from None


class NodeStepModule(Protocol):
    """What a node step's module (:attr:`NodeStep.agent`) defines, as the apply agent calls it on the
    node (Python 3.6, standard library and what the node has installed). :mod:`provision.testing` loads
    one as the agent does, for a plugin's own tests."""

    def plan(self, spec: dict, owned: dict, context: dict) -> dict:
        """``{"changes": [{target, action, why}], "refused": [{target, why}]}``: pure, from read state."""

    def snapshot(self, spec: dict) -> Any:
        """The live state the step may change, to put back on a rollback."""

    def apply(self, spec: dict, owned: dict, context: dict) -> dict:
        """Make the changes; what the step now owns (kept in the node's state record)."""

    def restore(self, snapshot: Any, spec: dict) -> list[str]:
        """Put the snapshot back; what still differs (each becomes a ``not_restored`` line)."""


FAMILIES = ("debian", "redhat")  # package families: apt-get (Debian, Ubuntu), dnf (RHEL, Fedora, Rocky, Alma)
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+._-]*\Z")  # Debian's and RPM's names alike: never an option
_MODULE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")  # a module or group name: never an option


@dataclass(frozen=True)
class Service:
    """A daemon a :class:`Remedy` runs on the node.

    :param name: its systemd unit (``libvirtd``): where systemd is PID 1 it is enabled and started, or
        restarted, through ``systemctl``.
    :param start: where systemd is not PID 1, the command that starts it as a daemon (``libvirtd -d``).
    :param ready: a path that exists once it answers (its socket); the start waits up to 20 s for it.
    :param restart_on_install: restarted when the same apply installed a package (libvirtd loads its
        storage drivers only when it starts).
    """

    name: str
    start: tuple[str, ...]
    ready: str = ""
    restart_on_install: bool = True


@dataclass(frozen=True)
class Remedy:
    """What ``provision apply`` does on a node to make one failing check pass, before it changes any
    configuration; a plugin gives it through :func:`~provision.hookspecs.provision_remedies`. After the
    remedies the node is probed again and the check must pass on the new facts.

    :param check: the check it fixes (``storage.iscsi``); filled in by :class:`~provision.checks.CheckSet`.
    :param packages: per package family (:data:`FAMILIES`: ``debian`` for apt-get, ``redhat`` for dnf)
        the packages to install; only those the node lacks are installed, without recommends. An install
        is never rolled back.
    :param modules: kernel modules to load now (``modprobe``); keeping them loaded at boot is a rendered
        file's job (``/etc/modules-load.d/provision.conf``).
    :param devices: ``(path, group, mode)`` of device nodes to give that group (made a system group when
        missing) and mode now (``("/dev/kvm", "kvm", "0660")``), as a rendered udev rule does at boot.
    :param services: daemons to run, in order: started when stopped, restarted after an install.
    :param manual: what no remedy can do live, as the exact change for the operator (the IOMMU on the
        kernel command line, then a reboot). A check whose remedies are all manual still refuses the node.
    """

    check: str = ""
    packages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    devices: tuple[tuple[str, str, str], ...] = ()
    services: tuple[Service, ...] = ()
    manual: str = ""

    def __post_init__(self) -> None:
        for family, names in self.packages.items():
            if family not in FAMILIES:
                raise ValueError(f"Remedy {self.check}: unknown package family {family!r} (known: {', '.join(FAMILIES)})")
            bad = [n for n in names if not _PACKAGE.match(n)]
            if bad:
                raise ValueError(f"Remedy {self.check}: not a package name: {', '.join(map(repr, bad))}")
        bad = [m for m in self.modules if not _MODULE.match(m)]
        if bad:
            raise ValueError(f"Remedy {self.check}: not a module name: {', '.join(map(repr, bad))}")
        for path, group, mode in self.devices:
            if not path.startswith("/dev/") or not _MODULE.match(group) or not re.fullmatch(r"0?[0-7]{3}", mode):
                raise ValueError(f"Remedy {self.check}: not a device, group and mode: {(path, group, mode)!r}")

    @property
    def live(self) -> bool:
        """Whether apply can carry it out (not only tell the operator)."""
        return bool(self.packages or self.modules or self.devices or self.services)
