"""The ``provision`` command: one Typer app per command group, composed here."""

from __future__ import annotations

from typing import Annotated

import typer

from provision.cli import apply as apply_cli
from provision.cli import guest as guest_cli
from provision.cli import inventory as inventory_cli
from provision.cli import plugins as plugins_cli
from provision.cli import preflight as preflight_cli
from provision.cli import render as render_cli
from provision.cli import smoke as smoke_cli

app = typer.Typer(
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
        "--vault-password-file", help="file with the vault password for -i inventories (repeatable; "
        "ANSIBLE_VAULT_PASSWORD_FILE works too)")] = [],  # noqa: B006
    ask_vault_pass: Annotated[bool, typer.Option("--ask-vault-pass", help="ask for the vault password")] = False,
    disable_plugin: Annotated[list[str], typer.Option(
        "--disable-plugin", help="do not load this plugin (its name, or the last part: kvm); repeatable; "
        "PROVISION_DISABLE_PLUGINS=a,b works too")] = [],  # noqa: B006
) -> None:
    """Preflight and provision OpenStack compute nodes: decide KVM or software QEMU, check what will break."""
    if disable_plugin:
        import os

        from provision.plugins import DISABLE_ENV

        os.environ[DISABLE_ENV] = ",".join(filter(None, [os.environ.get(DISABLE_ENV, ""), *disable_plugin]))
    if vault_password_file or ask_vault_pass:
        from provision.inventory.load import VaultOptions, set_vault_options

        set_vault_options(VaultOptions(tuple(vault_password_file), ask_vault_pass))


app.command("preflight")(preflight_cli.preflight_cli)
app.command("render")(render_cli.render_cli)
app.command("apply")(apply_cli.apply_cli)
app.command("verify")(apply_cli.verify_cli)
app.command("plugins")(plugins_cli.plugins_cli)
app.command("checks")(plugins_cli.checks_cli)
app.add_typer(inventory_cli.app, name="inventory")
app.add_typer(guest_cli.app, name="guest")
app.command("smoke")(smoke_cli.smoke_cli)
app.add_typer(smoke_cli.canary_app, name="canary")


def main() -> None:
    """The console script: the app, then an exit that skips the interpreter's teardown (about 40 ms of
    garbage collection and module clearing after a preflight). Nothing of provision's waits for it:
    every file, lock and temporary folder is closed by its own ``with`` before the app returns."""
    import os
    import signal
    import sys

    try:
        app()
        code = 0
    except SystemExit as exc:  # typer's standalone mode always ends here
        code = exc.code
    # the work is done: a Ctrl-C or SIGTERM from now on cannot interrupt the flush with a traceback
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away (provision preflight | head)
        code = code or 1
    os._exit(code or 0)
