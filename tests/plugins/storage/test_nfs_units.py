"""The mount unit's name is systemd's own escape of the mount point."""

import subprocess

import pytest

from provision_plugins.storage.nfs import systemd_escape_path


@pytest.mark.parametrize("path", ["/var/lib/nova/instances", "/var/lib/nova/instances/", "/srv/nova-x/inst ance",
                                  "/mnt/ünï", "/a/.hidden", "/a:b_c", "/"])
def test_escape_matches_systemd_escape(path):
    expected = subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True, check=True).stdout.strip()
    assert systemd_escape_path(path) == expected
