"""docker for testinfra, run from an argument vector: testinfra's own docker backend runs
``docker exec NAME /bin/sh -c CMD`` through a shell on this machine."""

from __future__ import annotations

from testinfra.backend.base import BaseBackend, CommandResult

from provision.remote.hosts import HostSpec


class ArgvDockerBackend(BaseBackend):
    """The command for the container is quoted for the container's shell, as testinfra quotes it;
    ``docker exec`` gets the container and that command as arguments of their own."""

    NAME = "docker"

    def __init__(self, host: HostSpec) -> None:
        self.spec = host
        super().__init__(host.address)

    def argv(self, command: str, *, stdin: bool = False) -> list[str]:
        return ["docker", "exec", *(["-i"] if stdin else []), self.spec.address, "/bin/sh", "-c", command]

    def run(self, command: str, *args: str, **kwargs) -> CommandResult:
        return self.run_input(self.get_command(command, *args), None)

    def run_input(self, command: str, data: bytes | None) -> CommandResult:
        """``command`` with ``data`` on its standard input (``docker exec -i``)."""
        from provision.parallel import run_child

        proc = run_child(self.argv(command, stdin=data is not None), data=data)
        return self.result(proc.returncode, self.encode(command), proc.stdout, proc.stderr)
