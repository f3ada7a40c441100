"""ssh for testinfra, run from an argument vector: no value of an inventory ever reaches a shell
on this machine (testinfra's own ssh backend joins its options into a ``sh -c`` command line)."""

from __future__ import annotations

from functools import cache

from testinfra.backend.base import BaseBackend, CommandResult

from provision.addresses import ssh_option_set
from provision.remote.hosts import HostSpec, private_folder


class ArgvSshBackend(BaseBackend):
    """testinfra's ssh backend, built from a :class:`HostSpec`'s parts. The command for the node is
    quoted for the node's shell, as testinfra quotes it; everything else is one argument each."""

    NAME = "ssh"

    def __init__(self, host: HostSpec, *, timeout: int = 10, controlpersist: int = 60) -> None:
        self.spec = host
        self.timeout = timeout
        self.controlpersist = controlpersist
        super().__init__(host.address)

    def argv(self, command: str) -> list[str]:
        host, own = self.spec, self.spec.ssh_args
        argv = ["ssh", *own]
        if host.user:
            argv += ["-o", f"User={host.user}"]
        if host.port:
            argv += ["-o", f"Port={host.port}"]
        if host.identity_file:
            argv += ["-i", host.identity_file]
        if not ssh_option_set(own, "ConnectTimeout"):
            argv += ["-o", f"ConnectTimeout={self.timeout}"]
        if host.control_path and not any(ssh_option_set(own, k) for k in ("ControlMaster", "ControlPath")):
            # one master connection per node, kept a while: the next command skips the handshake
            argv += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={self.controlpersist}s",
                     "-o", f"ControlPath={host.control_path}"]
        return [*argv, "--", host.address, command]

    def run(self, command: str, *args: str, **kwargs) -> CommandResult:
        return self.run_input(self.get_command(command, *args), None)

    def run_input(self, command: str, data: bytes | None) -> CommandResult:
        """``command`` (quoted for the node's shell already) with ``data`` on its standard input: a
        program and spec of any size (one argument may hold 128 KiB on Linux)."""
        from provision.parallel import run_child

        proc = run_child(self.argv(command), data=data)
        result = self.result(proc.returncode, self.encode(command), proc.stdout, proc.stderr)
        if result.rc == 255:  # ssh's own failure, as testinfra's backend reports it
            raise RuntimeError(result)
        return result


@cache
def control_folder(base: str | None = None) -> str:
    """A folder for ssh's master sockets that only this user can reach (:func:`private_folder`)."""
    return private_folder("provision-ssh", base)


def control_path() -> str:
    """ssh's ControlPath: %C (a hash of the connection) keeps names short enough for a socket."""
    return f"{control_folder()}/%C"
