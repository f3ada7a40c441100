"""System folders are never a pool's folder: an NFS mount point (or any plugin's folder pool target) inside
/, /etc, /usr, /boot, /proc, /sys, /dev, /root or /var/lib/provision, or inside another pool's folder, is
exit 2 naming the file, host and field, before anything is rendered or planned."""

import json

import pytest

from provision.fields import SYSTEM_FOLDERS

NFS = {"type": "nfs", "name": "n1", "server": "192.0.2.1", "export": "/export"}


def inventory(tmp_path, storage, **host):
    path = tmp_path / "site.json"
    path.write_text(json.dumps({"all": {"hosts": {"n1": {**host, "provision": {"virt_type": "qemu", "storage": storage}}}}}))
    return str(path)


@pytest.mark.parametrize("folder", ["/", "/etc", "/usr", "/boot", "/proc", "/root/.ssh", "/var/lib/provision",
                                    "/sys/fs", "/dev/shm", "/etc/ceph"])
def test_an_nfs_mount_point_in_a_system_folder_is_refused(cli, tmp_path, folder):
    source = inventory(tmp_path, [{**NFS, "mountpoint": folder}])
    out = tmp_path / "out"
    for args in (("inventory", "validate"), ("render", "--out", str(out))):
        result = cli(*args, "-i", source)
        assert result.exit_code == 2, result.output
        assert f"{source}: host n1: provision.storage[0].mountpoint: must not be " in result.stderr
        assert ("the root folder" if folder == "/" else "a system folder") in result.stderr
    assert not out.exists()


def test_every_system_folder_is_named():
    for folder in ("/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/root", "/var/lib/provision"):
        assert folder in SYSTEM_FOLDERS


def test_ordinary_folders_are_taken(cli, tmp_path):
    source = inventory(tmp_path, [{**NFS, "mountpoint": "/var/lib/nova/instances"},
                                  {**NFS, "name": "n2", "mountpoint": "/srv/etcetera"},
                                  {**NFS, "name": "n3", "mountpoint": "/srv/etc"}])
    result = cli("inventory", "validate", "-i", source)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("first", "second", "said"), [
    ("/srv/pools", "/srv/pools/a", "/srv/pools/a is inside storage[0].mountpoint (/srv/pools)"),
    ("/srv/pools/a", "/srv/pools", "/srv/pools/a is inside storage[1].mountpoint (/srv/pools)"),
    ("/srv/pools", "/srv/pools", "/srv/pools is the same folder as storage[0].mountpoint (/srv/pools)"),
])
def test_a_pool_folder_inside_another_pools_is_refused(cli, tmp_path, first, second, said):
    source = inventory(tmp_path, [{**NFS, "mountpoint": first}, {**NFS, "name": "n2", "mountpoint": second}])
    result = cli("inventory", "validate", "-i", source)
    assert result.exit_code == 2
    assert "host n1: provision.storage[" in result.stderr and said in result.stderr


def test_any_plugins_folder_pool_is_checked_before_apply_plans_it(cli, tmp_path):
    """A third-party ``dir`` pool: the core reads its target from the pool's libvirt XML."""
    env = {"PROVISION_PLUGINS": "tests.fixture_plugins.dir_storage"}
    source = inventory(tmp_path, [{"type": "dir", "name": "d1", "path": "/etc"},
                                  {"type": "dir", "name": "d2", "path": "/srv/d"}],
                       ansible_connection="local")
    result = cli("apply", "--check", "-i", source, env=env)
    assert result.exit_code == 2, result.output
    assert f"{source}: host n1: provision.storage[0].path: pool 'd1' targets /etc: must not be /etc, a system folder" in result.stderr
    assert result.stdout == ""


def test_the_core_finds_nested_pool_targets_in_the_libvirt_xml():
    from provision.stages.apply import _folder_problems

    def pool(name, kind, target):
        return {"kind": "pool", "name": name, "xml": f"<pool type='{kind}'><name>{name}</name><target><path>{target}</path></target></pool>"}

    settings = {"storage": [{"where": "/srv/a"}, {"where": "/srv/a/b/"}]}
    problems = _folder_problems(settings, [pool("a", "dir", "/srv/a"), pool("b", "netfs", "/srv/a/b/"),
                                           pool("c", "logical", "/dev/vg0"), pool("d", "fs", "/boot")])
    assert problems == [((), "pool 'd' targets /boot: must not be /boot, a system folder"),
                        (("storage", 1, "where"), "pool 'b' targets /srv/a/b, which is pool 'a''s folder /srv/a or inside it")]
