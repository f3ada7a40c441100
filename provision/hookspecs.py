"""Every hook a provision plugin can implement.

Each hook is prefixed ``provision_`` so it can be grepped and cannot clash.
A plugin implements a hook by defining a function of the same name marked
with :data:`hookimpl`; built-in plugins do it exactly as third-party ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from provision.api import LibvirtKind, LibvirtObject, NodeStep, Remedy, RenderContext, RenderedFile

if TYPE_CHECKING:
    from provision.facts import Facts
    from provision.guests.canary import NodeCanary
    from provision.results import CheckResult, Decision

PROJECT = "provision"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def provision_probe() -> dict[str, dict[str, Any]]:
    """Name what the plugin needs to read from a node, as probe operations.

    All plugins' operations are merged and run on the node in one request
    to one probe; the answers come back as :class:`~provision.facts.Facts`.
    An operation is a dict of JSON data (anything else is refused when the
    plugins are loaded) with an ``op`` key, one of ``read``, ``read_first``,
    ``node_file``, ``stat``, ``listdir``, ``exists``, ``installed``, ``run``,
    ``processes``, ``statvfs``, ``ioctl``, ``kvm_run``, ``qemu_cpu_models``,
    ``adjtimex``, ``listening``, ``connect``, ``pci_devices``, ``canary_boot`` (see
    ``provision/node/probe*.py``).

    :return: fact key (prefix it with the plugin's area, e.g. ``kvm.device``)
        mapped to the operation that gathers it. Not firstresult: all merged.

    Example::

        @hookimpl
        def provision_probe():
            return {"cpu.info": {"op": "read", "path": "/proc/cpuinfo"}}
    """


@hookspec
def provision_probe_settings(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Name probe operations that one node's settings call for (the Ceph monitors its RBD pools name,
    to be reached from the node); they are gathered in a second probe request (over the same
    connection), only for a node where some plugin names one, and their facts join the node's before
    the checks run.

    :param settings: the node's validated settings.
    :return: fact key mapped to the operation that gathers it, as :func:`provision_probe`'s.
        Not firstresult: all merged.
    """


@hookspec
def provision_probe_functional(canary: NodeCanary) -> dict[str, dict[str, Any]]:
    """Name probe operations that prove the node works by running something on it.

    Called only for ``provision preflight --functional`` and ``provision smoke``;
    the operations join :func:`provision_probe`'s in the same round trip and are
    merged the same way.

    :param canary: a :class:`~provision.guests.canary.NodeCanary`: where the canary
        guest's kernel and initramfs are on that node (the core copied them
        there, checked by sha256), how to boot it, which console line marks a
        boot and how long one boot may take; ``canary.unavailable`` says why it
        could not be put there (then no path is set, and an operation should
        report that reason as skipped).
    :return: fact key mapped to the operation that gathers it. Not firstresult: all merged.

    Example::

        @hookimpl
        def provision_probe_functional(canary):
            return {"kvm.boot": {"op": "canary_boot", "kernel": canary.kernel, "initrd": canary.initrd,
                                 "cmdline": canary.cmdline, "marker": canary.marker,
                                 "accels": [["kvm", canary.timeout], ["tcg", canary.timeout]],
                                 "unavailable": canary.unavailable}}
    """


@hookspec
def provision_check_catalog() -> dict[str, str]:
    """Declare the check ids this plugin can report, with one line each.

    Used by ``provision checks`` and to validate ``--ignore ID``.

    :return: check id mapped to a one-line summary. Not firstresult: all merged.
    """


@hookspec
def provision_checks(facts: Facts, settings: dict[str, Any]) -> list[CheckResult]:
    """Evaluate checks on a node's facts, as pure functions of them.

    Checks never contact the node themselves: everything they read was
    gathered by :func:`provision_probe`.

    :param facts: the node's gathered facts.
    :param settings: the node's merged ``provision`` settings (inventory),
        e.g. ``settings["virt_type"]`` (the core's own setting) is ``auto``, ``kvm`` or ``qemu``.
    :return: one result per check the plugin ran. Not firstresult: all collected.
    """


@hookspec(firstresult=True)
def provision_virt_decision(facts: Facts, settings: dict[str, Any]) -> Decision | None:
    """Decide the libvirt domain type (``kvm`` or ``qemu``) and CPU mode for a node.

    firstresult: the first plugin that returns a :class:`~provision.results.Decision`
    wins. The built-in decision (``provision_plugins.kvm``) is marked ``tryfirst`` and is the
    default: an ordinary third-party implementation is only asked where it returned ``None``
    (it never does), and a plugin replaces it only by declaring ``@hookimpl(tryfirst=True)``
    itself (pluggy calls the later-registered of two ``tryfirst`` implementations first). The
    report names the plugin that decided (``decision.plugin`` in JSON).

    :param facts: the node's gathered facts.
    :param settings: the node's merged ``provision`` settings.
    :return: the decision with its reasons, or ``None`` to leave it to another plugin.
    """


@hookspec
def provision_remedies(facts: Facts, settings: dict[str, Any], failing: Sequence[CheckResult]) -> list[Remedy]:
    """Say how ``apply`` fixes the plugin's own failing checks on the node: the packages to install,
    the kernel modules to load, the device nodes' group and mode, the daemons to start, or, where
    nothing can be done live, the exact change for the operator (``manual``).

    ``apply`` carries out every node's remedies before it changes any configuration (``--check``
    lists them), probes the node again and evaluates the checks on the new facts; a failing check
    that no live remedy fixes refuses the node. ``provision.remedies: false`` in the inventory, or
    ``--no-remedies``, turns them off. :class:`~provision.checks.CheckSet` implements this hook
    from remedies registered beside the checks (``checks.remedy("storage.iscsi")``).

    :param facts: the node's facts, as the checks saw them.
    :param settings: the node's validated settings.
    :param failing: the node's failing and warning checks (every plugin's; answer for your own; a
        failure the operator ignored with ``--ignore`` is not among them). A remedy for a warning runs
        too, so give one only where it is safe wherever it applies (a device node's mode).
    :return: one :class:`~provision.api.Remedy` per check the plugin can fix, each naming it.
        Not firstresult: all collected.
    """


@hookspec
def provision_kernel_modules(settings: dict[str, Any]) -> list[str]:
    """Name the kernel modules the node's plan needs loaded at every boot (``8021q`` for VLANs,
    ``iscsi_tcp`` for iSCSI pools); they are rendered into ``/etc/modules-load.d/provision.conf``.

    :param settings: one node's validated settings.
    :return: module names. Not firstresult: all collected, each named once.
    """


@hookspec
def provision_settings_schema() -> dict[str, Any]:
    """Contribute the plugin's part of the ``provision`` settings schema (the inventory variable).

    Plain fields are keyed by dotted path and given as ``(type, default)``; entries of a list
    tagged by their ``type`` field are keyed ``"name[]"`` and given as a pydantic model whose
    ``type`` is a one-value ``Literal``. Models should derive from
    :class:`provision.settings.StrictModel` so unknown keys are errors.

    The part must follow from the plugin's code alone (no environment variable or file read at call
    time): the defaults it gives nodes without an inventory are kept between runs, and used again
    while no module file loaded when they were computed has changed (:mod:`provision.stages.defaults`).

    :return: the plugin's fields. Not firstresult: all merged into one model.

    Example::

        @hookimpl
        def provision_settings_schema():
            return {"hypervisor": (HypervisorSettings, HypervisorSettings())}
    """


@hookspec
def provision_validate_settings(settings: dict[str, Any]) -> list[tuple[tuple, str]]:
    """Check rules that span fields (a VLAN names a defined bridge, subnets do not overlap).

    Runs after the schema accepted the settings, so every field has its type and default.

    :param settings: one host's validated ``provision`` settings, as plain data.
    :return: ``(path inside provision, message)`` for each problem, e.g.
        ``(("network", "vlans", 0, "bridge"), "names no defined bridge 'br-x'")``.
        Not firstresult: all collected.
    """


@hookspec
def provision_template_paths() -> list[str]:
    """Add folders of Jinja2 templates, searched after the built-in ``templates/``.

    A third-party plugin ships its templates this way and names them in
    :func:`provision_render` as ``ctx.render("mypool/pool.xml.j2", ...)``.

    :return: absolute folder paths. Not firstresult: all used.
    """


@hookspec
def provision_render(ctx: RenderContext) -> list[RenderedFile]:
    """Render the plugin's configuration files for one node.

    Rendering is pure: it reads the node's settings (and its preflight decision, when
    ``virt_type`` is ``auto``), never the node itself, and never a secret's value.

    :param ctx: the node's name, validated settings, effective ``virt_type``, the decision's ``cpu_mode``
        and ``ctx.render(template, **values)`` over the shared Jinja2 environment
        (StrictUndefined; ``*.xml.j2`` autoescaped).
    :return: the files, each with its target path on the node and mode. Not firstresult:
        every plugin's files are collected; two plugins writing one target is an error.
    """


@hookspec
def provision_apply_objects(ctx: RenderContext, files: Mapping[str, RenderedFile]) -> list[LibvirtObject]:
    """Name the libvirt objects that the plugin's rendered XML defines, for ``apply`` and ``verify``.

    Every rendered file is written by ``apply`` as it is; a file that defines a libvirt network,
    secret or pool is also named here by the plugin that rendered it, so ``apply`` defines, starts
    and autostarts the object, and sets a secret's value from the node's own file.

    :param ctx: the node, as :func:`provision_render` saw it.
    :param files: every file rendered for the node, by target.
    :return: one :class:`~provision.api.LibvirtObject` per object the plugin's files define.
        Not firstresult: all collected; ``apply`` defines networks, then secrets, then pools.

    Example::

        @hookimpl
        def provision_apply_objects(ctx, files):
            return [LibvirtObject("pool", f"{LIBVIRT_DIR}/pool-{p['name']}.xml") for p in my_pools(ctx.settings)]
    """


@hookspec
def provision_apply_node_steps(ctx: RenderContext, files: Mapping[str, RenderedFile]) -> list[NodeStep]:
    """Name changes that ``apply`` makes by running the plugin's own code on the node (the host
    network, through netlink), each in its declared phase: before libvirt's objects (the default),
    or after the rendered files.

    The step's module is sent with the apply agent; it plans, snapshots, applies and restores (see
    :class:`~provision.api.NodeStep` and :class:`~provision.api.NodeStepModule`;
    :mod:`provision.testing` loads one as the agent does). A step that fails, like any other, undoes
    the whole run, and what its restore could not put back is reported as not restored. A guarded
    step is confirmed by the controller over a new connection, or rolled back by the node.

    :param ctx: the node, as :func:`provision_render` saw it.
    :param files: every file rendered for the node, by target.
    :return: the plugin's steps. Not firstresult: all collected, run in plugin load order.
    """


@hookspec
def provision_libvirt_kinds() -> list[LibvirtKind]:
    """Describe kinds of libvirt object beyond the built-in network, secret and pool (an ``nwfilter``),
    so that :func:`provision_apply_objects` may name objects of that kind.

    :return: the kinds, as data (:class:`~provision.api.LibvirtKind`); they are defined after the
        built-in ones, in plugin load order. A kind two plugins describe is refused at start-up.
        Not firstresult: all collected.
    """


@hookspec
def provision_network_links(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Describe the host interfaces a network kind needs, for the host network renderer.

    Each link is a dict with ``name``, ``kind`` (``ethernet``, ``bridge``, ``vlan``) and as
    needed ``interfaces`` (bridge members), ``addresses``, ``mtu``, ``stp``, ``id`` and
    ``link`` (VLAN id and parent), ``bridge`` (the bridge it is enslaved to). The host
    network plugin turns all links into netplan YAML or systemd-networkd units.

    :param settings: one node's validated ``provision`` settings.
    :return: links. Not firstresult: all collected, in plugin load order.
    """


@hookspec(firstresult=True)
def provision_guest_backend(uri: str) -> Any | None:
    """Open the backend that manages guests at ``uri`` (e.g. ``qemu:///system``).

    firstresult: the first plugin that recognises the URI returns a connected backend
    (see :class:`provision.guests.GuestBackend`); others return ``None``.

    :param uri: the hypervisor connection URI.
    :return: the backend, or ``None`` when this plugin does not handle the URI.
    """
