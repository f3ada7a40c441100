"""Errors the CLI turns into ``provision: error: ...`` and an exit code, never a traceback."""


class ProvisionError(Exception):
    """An operation failed on a node or on this machine (exit 1); the text says what and what was undone."""

    exit_code = 1


class Unreachable(ProvisionError):
    """A node could not be reached, or its probe or agent could not run there (exit 1, as a failed
    check); the text says which node and why. The one unreachable-node error of every command."""


class InputError(ProvisionError):
    """Bad input: an option, a file or a field (exit 2). Its text names what is wrong."""

    exit_code = 2


class SettingsError(InputError):
    """Fields of one node's settings that cannot work on that node, found while acting on it
    (e.g. an LVM device that already holds a filesystem): ``[(path, message), ...]``, the path
    inside the ``provision`` variable. The caller names the file and the host."""

    def __init__(self, problems: list[tuple[tuple, str]]) -> None:
        super().__init__(problems)
        self.problems = problems

    def lines(self, host: str, file_of=lambda path: None) -> list[str]:
        """One line per problem, as inventory errors read: ``FILE: host H: provision.FIELD: message``."""
        return [problem_line(file_of(path), host, path, message) for path, message in self.problems]

    def __str__(self) -> str:
        return "; ".join(f"{field(path)}: {message}" for path, message in self.problems)


def dotted(path: tuple) -> str:
    """('storage', 0, 'server') -> 'storage[0].server'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problem_line(file, host: str, path: tuple, message: str) -> str:
    """``FILE: host H: provision.FIELD: message`` (without ``FILE: `` when no file set the value)."""
    return f"{str(file) + ': ' if file else ''}host {host}: {field(path)}: {message}"


def field(path: tuple) -> str:
    """The inventory variable a settings path names: ``provision.storage[0].server``, or ``provision``."""
    return f"provision.{dotted(path)}" if path else "provision"
