"""The console script's entry point, kept tiny: a Ctrl-C while the CLI is still being imported ends the
run quietly (exit 130, as a shell reports SIGINT) instead of with a KeyboardInterrupt traceback."""

import sys


def main() -> None:
    try:
        from provision.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("provision: interrupted while starting; nothing was done\n")
        sys.exit(130)
    cli_main()
