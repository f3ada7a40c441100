"""The ``provision`` command: the main options, and a table of commands and groups, each built when run."""

from __future__ import annotations

import functools
import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

# Each command: (module, attribute), a command function or a Typer group of subcommands, in the order
# ``--help`` lists them. Only the command being run is imported and built (click's lazily loaded
# subcommands): turning all ten into click commands took 20 ms of every run.
COMMANDS: dict[str, tuple[str, str]] = {
    "preflight": ("provision.cli.preflight", "preflight_cli"),
    "render": ("provision.cli.render", "render_cli"),
    "apply": ("provision.cli.apply", "apply_cli"),
    "verify": ("provision.cli.apply", "verify_cli"),
    "plugins": ("provision.cli.plugins", "plugins_cli"),
    "checks": ("provision.cli.plugins", "checks_cli"),
    "smoke": ("provision.cli.smoke", "smoke_cli"),
    "inventory": ("provision.cli.inventory", "app"),
    "guest": ("provision.cli.guest", "app"),
    "canary": ("provision.cli.smoke", "canary_app"),
}


class LazyCommands(TyperGroup):
    """The top-level group: its commands come from :data:`COMMANDS`, each built when first asked for."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        return _command(cmd_name) if cmd_name in COMMANDS else None


@functools.cache
def _command(name: str):
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    command: Any  # a click command or group (typer vendors click)
    if isinstance(target, typer.Typer):  # a group, even of one subcommand (canary build)
        command = typer.main.get_group(target)
    else:  # a command function: a one-command app makes it a click command
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


app = typer.Typer(
    cls=LazyCommands,
    name="provision",
    help="Preflight and provision OpenStack compute nodes: decide KVM or software QEMU, check what will break.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: typer's rich help imports rich.markdown, 70 ms of every --help
)


@app.callback()
def options(
    vault_password_file: Annotated[list[str], typer.Option(
        "--vault-password-file", metavar="FILE", help="file with the vault password for -i inventories (repeatable; "
        "ANSIBLE_VAULT_PASSWORD_FILE works too)")] = [],  # noqa: B006
    ask_vault_pass: Annotated[bool, typer.Option("--ask-vault-pass", help="ask for the vault password")] = False,
    allow_lookup: Annotated[list[str], typer.Option(
        "--allow-lookup", metavar="NAME", help="let inventory values call this Ansible lookup (env, file, ...); "
        "refused by default: lookups run plugins on this machine; repeatable; PROVISION_ALLOW_LOOKUPS=a,b works too")
    ] = [],  # noqa: B006
    disable_plugin: Annotated[list[str], typer.Option(
        "--disable-plugin", metavar="NAME", help="do not load this plugin (its name, or the last part: kvm); repeatable; "
        "PROVISION_DISABLE_PLUGINS=a,b works too")] = [],  # noqa: B006
) -> None:
    """Preflight and provision OpenStack compute nodes: decide KVM or software QEMU, check what will break."""
    if disable_plugin:
        import os

        from provision.plugins import DISABLE_ENV

        os.environ[DISABLE_ENV] = ",".join(filter(None, [os.environ.get(DISABLE_ENV, ""), *disable_plugin]))
    if allow_lookup:
        import os

        from provision.inventory.lookups import ALLOW_ENV

        os.environ[ALLOW_ENV] = ",".join(filter(None, [os.environ.get(ALLOW_ENV, ""), *allow_lookup]))
    if vault_password_file or ask_vault_pass:
        from provision.inventory.load import VaultOptions, set_vault_options

        set_vault_options(VaultOptions(tuple(vault_password_file), ask_vault_pass))


def main() -> None:
    """The console script: the app, then an exit that skips the interpreter's teardown (about 40 ms of
    garbage collection and module clearing after a preflight). Nothing of provision's waits for it:
    every file, lock and temporary folder is closed by its own ``with`` before the app returns."""
    import os
    import signal
    import sys

    code: int | str | None
    try:
        app()
        code = 0
    except SystemExit as exc:  # typer's standalone mode always ends here
        code = exc.code
    # the work is done: a Ctrl-C or SIGTERM from now on cannot interrupt the flush with a traceback
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    if "provision.parallel" in sys.modules:  # a program a node thread was given up on must not outlive us
        sys.modules["provision.parallel"].end_children()
    if "provision.inventory.load" in sys.modules:  # Ansible's temporary folder, which its atexit would remove
        sys.modules["provision.inventory.load"].remove_temp()
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away (provision preflight | head)
        code = code or 1
    os._exit(code or 0)
