"""``provision guest``: start and manage guests through the node's backend (libvirt)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer

from provision.cli.common import InventoryOpt, LimitOpt, Output, command_group, seconds_option, user_errors
from provision.report.text import terminal_text as safe

app = command_group("Create, inspect and manage guests on a node (libvirt).")

ConnectOpt = Annotated[Optional[str], typer.Option("--connect", "-c", metavar="URI", help="libvirt URI (default qemu:///system)")]


class VirtType(str, Enum):
    auto = "auto"
    kvm = "kvm"
    qemu = "qemu"


@contextmanager
def backend(connect, inventory, limit, virt_type=None):
    from provision.guests import open_backend
    from provision.guests.target import resolve_target
    from provision.plugins import default_hooks

    hooks = default_hooks()
    target = resolve_target(connect=connect, inventory=inventory, limit=limit, virt_type=virt_type, hooks=hooks)
    opened = open_backend(target.uri, hooks)
    try:
        yield opened, target, hooks
    finally:
        opened.close()


@app.command("create")
@user_errors
def create_cli(
    name: str,
    image: Annotated[Optional[str], typer.Option(metavar="PATH", help="disk image: booted through a qcow2 overlay in --pool")] = None,
    kernel: Annotated[Optional[str], typer.Option(metavar="PATH", help="kernel for direct boot (path on the node)")] = None,
    initrd: Annotated[Optional[str], typer.Option(metavar="PATH", help="initrd for direct boot")] = None,
    cmdline: Annotated[str, typer.Option(metavar="TEXT", help="kernel command line")] = "console=ttyS0",
    memory: Annotated[int, typer.Option(metavar="MiB", help="memory")] = 256,
    max_memory: Annotated[int, typer.Option(metavar="MiB", help="memory the guest may grow to (set-memory)")] = 0,
    vcpus: Annotated[int, typer.Option(min=1, metavar="N")] = 1,
    max_vcpus: Annotated[int, typer.Option(metavar="N", help="vCPUs the guest may grow to (set-vcpus); default 2x --vcpus")] = 0,
    network: Annotated[list[str], typer.Option(metavar="NETWORK", help="libvirt network; repeatable")] = [],  # noqa: B006
    disk: Annotated[list[str], typer.Option(metavar="POOL:SIZE", help="a new disk; repeatable")] = [],  # noqa: B006
    pool: Annotated[str, typer.Option(metavar="POOL", help="pool for the --image overlay")] = "default",
    virt_type: Annotated[VirtType, typer.Option(help="auto: the node's preflight decision")] = VirtType.auto,
    print_xml: Annotated[bool, typer.Option("--print-xml", help="print the domain XML; define nothing")] = False,
    connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None,
) -> None:
    """Define and start a guest: direct kernel boot or a disk image, serial console to a log file."""
    from provision.guests import GuestSpec, parse_disk, render_domain_xml

    with backend(connect, inventory, limit, virt_type.value) as (guests, target, hooks):
        spec = GuestSpec(name, target.virt_type(hooks), arch=guests.host_arch(), memory_mib=memory, vcpus=vcpus,
                         max_vcpus=max_vcpus or 2 * vcpus, max_memory_mib=max_memory, kernel=kernel, initrd=initrd,
                         cmdline=cmdline, image=image, pool=pool, networks=tuple(network),
                         new_disks=tuple(parse_disk(d) for d in disk))
        if print_xml:
            typer.echo(render_domain_xml(spec), nl=False)
            return
        info = guests.create(spec)
    typer.echo(safe(f"{info.name}: created and {info.state} ({info.virt_type}, {info.vcpus} vCPU, {info.memory_mib} MiB); "
               f"console log {info.console_log}"))


@app.command("list")
@user_errors
def list_cli(output: Annotated[Output, typer.Option("--output", "-o")] = Output.table,
             connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """List the guests on the node."""
    with backend(connect, inventory, limit) as (guests, _, _):
        rows = guests.list()
    if output == Output.json:
        typer.echo(json.dumps({"guests": [g.as_dict() for g in rows]}, indent=2))
        return
    for g in rows:
        typer.echo(safe(f"{g.name:<24} {g.state:<10} {g.virt_type:<5} {g.vcpus} vCPU {g.memory_mib} MiB"))


@app.command("info")
@user_errors
def info_cli(name: str, output: Annotated[Output, typer.Option("--output", "-o")] = Output.table,
             connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """One guest: state, type, vCPUs, memory, disks, NICs, console log."""
    with backend(connect, inventory, limit) as (guests, _, _):
        info = guests.info(name)
    if output == Output.json:
        typer.echo(json.dumps(info.as_dict(), indent=2))
        return
    for key, value in info.as_dict().items():
        typer.echo(safe(f"{key}: {value}"))


@app.command("console")
@user_errors
def console_cli(name: str, connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Print the guest's serial console log so far."""
    from provision.cli.common import stdout_is_terminal
    from provision.errors import InputError
    from provision.remote.probe import Unreachable, gather_facts  # provision.errors.Unreachable: exit 1

    with backend(connect, inventory, limit) as (guests, target, _):
        path = guests.info(name).console_log
    if not path:
        raise InputError(f"{name} has no serial console log")
    if target.node is None:
        raise InputError(f"the console log {path} is on the node behind {target.uri}: use a qemu+ssh:// URI or -i")
    try:
        facts = gather_facts(target.node.spec, {"log": {"op": "read", "path": path}})
    except Unreachable as exc:
        raise Unreachable(f"cannot read {path} on {target.node.name}: {exc}") from None
    if facts.error("log"):
        raise InputError(f"cannot read {path} on {target.node.name}: {facts.error('log')}")
    log = facts.text("log")  # a guest's console writes what it likes: on a terminal, shown, never obeyed
    typer.echo(safe(log) if stdout_is_terminal() else log, nl=False)


def _simple(action: str, doc: str):
    @user_errors
    def command(name: str, connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
        with backend(connect, inventory, limit) as (guests, _, _):
            typer.echo(safe(getattr(guests, action)(name)))

    command.__doc__ = doc
    app.command(action)(command)


_simple("start", "Start a defined guest.")
_simple("destroy", "Stop a guest at once (power off).")
_simple("pause", "Pause a running guest.")
_simple("resume", "Resume a paused guest.")


@app.command("shutdown")
@user_errors
def shutdown_cli(name: str, timeout: Annotated[float, seconds_option(min=0, help="seconds before forcing it off")] = 30,
                 connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Shut down gracefully (ACPI power button), then force it off after --timeout; say which."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.shutdown(name, timeout)))


@app.command("save")
@user_errors
def save_cli(name: str, file: str, connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Save a running guest's memory to FILE (on the node) and stop it."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.save(name, file)))


@app.command("restore")
@user_errors
def restore_cli(file: str, connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Start a guest again from a file written by save."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.restore(file)))


@app.command("undefine")
@user_errors
def undefine_cli(name: str, remove_storage: Annotated[bool, typer.Option("--remove-storage")] = False,
                 connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Remove a stopped guest's definition (and its volumes with --remove-storage)."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.undefine(name, remove_storage)))


@app.command("attach-disk")
@user_errors
def attach_disk_cli(name: str, disk: Annotated[str, typer.Option(metavar="POOL:SIZE", help="a new disk")],
                    connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Add a new disk: live when the guest runs, otherwise for the next boot."""
    from provision.guests import parse_disk

    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.attach_disk(name, *parse_disk(disk))))


@app.command("detach-disk")
@user_errors
def detach_disk_cli(name: str, target: Annotated[str, typer.Option(metavar="DEV", help="the disk's target, e.g. vdb")],
                    connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Remove a disk (its volume is kept)."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.detach_disk(name, target)))


@app.command("attach-nic")
@user_errors
def attach_nic_cli(name: str, network: Annotated[str, typer.Option(metavar="NETWORK", help="libvirt network")],
                   connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Add a virtio NIC on a libvirt network."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.attach_nic(name, network)))


@app.command("detach-nic")
@user_errors
def detach_nic_cli(name: str, mac: Annotated[str, typer.Option(metavar="MAC", help="the NIC's MAC address")],
                   connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Remove a NIC by its MAC address."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.detach_nic(name, mac)))


@app.command("set-vcpus")
@user_errors
def set_vcpus_cli(name: str, count: int, connect: ConnectOpt = None, inventory: InventoryOpt = None,
                  limit: LimitOpt = None) -> None:
    """Change the vCPU count: live up to the maximum, otherwise for the next boot."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.set_vcpus(name, count)))


@app.command("set-memory")
@user_errors
def set_memory_cli(name: str, mib: int, connect: ConnectOpt = None, inventory: InventoryOpt = None,
                   limit: LimitOpt = None) -> None:
    """Change the memory (MiB): live (balloon) up to the maximum, otherwise for the next boot."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.set_memory(name, mib)))


@app.command("migrate")
@user_errors
def migrate_cli(name: str, to: Annotated[str, typer.Option("--to", metavar="URI", help="destination libvirt URI")],
                live: Annotated[Optional[bool], typer.Option("--live/--offline", help="default: live if running")] = None,
                connect: ConnectOpt = None, inventory: InventoryOpt = None, limit: LimitOpt = None) -> None:
    """Move a guest to another node: offline (a stopped guest's definition), or live when both ends allow."""
    with backend(connect, inventory, limit) as (guests, _, _):
        typer.echo(safe(guests.migrate(name, to, live)))
