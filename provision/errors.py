"""Errors a user can cause; the CLI turns them into a message and exit code 2."""


class InputError(Exception):
    """Bad input: an option, a file or a field. Its text names what is wrong."""

    exit_code = 2
