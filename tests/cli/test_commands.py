"""The command table: every command is listed in order and builds; running one builds only it."""

import json
import subprocess
import sys

from provision.cli import COMMANDS


def test_help_lists_every_command_in_the_tables_order(cli):
    result = cli("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:\n", 1)[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_every_command_and_group_builds_with_its_own_help(cli):
    for name in COMMANDS:
        result = cli(name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: provision {name} [OPTIONS]")
        assert "--install-completion" not in result.output  # only the main app would offer it, and it does not
    assert cli("canary", "--help").output.startswith("Usage: provision canary [OPTIONS] COMMAND")  # a group of one stays a group


def test_an_unknown_command_is_a_usage_error(cli):
    result = cli("preflght")
    assert result.exit_code == 2
    assert "No such command 'preflght'" in result.output


def test_running_a_command_imports_no_other_commands_module():
    program = (
        "import json, sys\n"
        "from provision.cli import app\n"
        "try:\n"
        "    app(['checks'], standalone_mode=False)\n"
        "finally:\n"
        "    print(json.dumps(sorted(m for m in sys.modules if m.startswith('provision.cli.'))), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == ["provision.cli.common", "provision.cli.plugins"]


def every_command():
    """(words that run it, click command) for every command and subcommand."""
    from provision.cli import _command

    for name in COMMANDS:
        command = _command(name)
        subcommands = getattr(command, "commands", None)
        if subcommands:
            yield from (((name, sub), c) for sub, c in subcommands.items())
        else:
            yield (name,), command


def test_every_option_that_takes_a_value_names_it():
    for words, command in every_command():
        for param in command.params:
            if param.param_type_name != "option" or param.is_flag or getattr(param.type, "choices", None):
                continue
            assert param.metavar and param.metavar == param.metavar.upper().replace("MIB", "MiB"), (words, param.opts)


def test_every_float_option_is_in_seconds_and_refuses_nan(cli):
    found = []
    for words, command in every_command():
        arguments = ["x" for p in command.params if p.param_type_name == "argument" and p.required]
        for param in command.params:
            if param.param_type_name == "option" and "float" in param.type.name:
                found.append((words, param.opts[0]))
                result = cli(*words, param.opts[0], "nan", *arguments)
                assert result.exit_code == 2, (words, param.opts, result.output)
                assert f"Invalid value for '{param.opts[0]}': must be a number of seconds, not NaN" in result.output
                assert param.metavar == "SECONDS"
    assert (("verify",), "--timeout") in found and len(found) >= 8
