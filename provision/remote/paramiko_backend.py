"""testinfra's paramiko backend, with a standard input for the command: the probe's and the agent's
program and spec travel there, whatever their size."""

from __future__ import annotations

from testinfra.backend.base import CommandResult
from testinfra.backend.paramiko import ParamikoBackend


class InputParamikoBackend(ParamikoBackend):
    def run_input(self, command: str, data: bytes | None) -> CommandResult:
        """``command`` (quoted for the node's shell already) with ``data`` on its standard input."""
        cmd = self.encode(command)
        transport = self.client.get_transport()
        assert transport is not None
        chan = transport.open_session()
        chan.exec_command(cmd)
        if data is not None:
            chan.sendall(data)
        chan.shutdown_write()  # end of input: the program reads to it
        stdout = b"".join(chan.makefile("rb"))
        stderr = b"".join(chan.makefile_stderr("rb"))
        return self.result(chan.recv_exit_status(), cmd, stdout, stderr)
