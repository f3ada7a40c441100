"""A canary built from another init is stale: it is refused with the way to rebuild it, never booted
(a storage smoke on an old canary would find no disk lines and blame the pools)."""

import pytest

from provision.errors import InputError
from provision.guests.canary import find_canary, init_digest


def test_a_canary_without_this_inits_stamp_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path))
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "vmlinuz").write_bytes(b"kernel")
    (folder / "initrd.gz").write_bytes(b"initrd")
    with pytest.raises(InputError, match=r"was built from an older init: rebuild it with `provision canary build`"):
        find_canary()
    (folder / "INIT.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(InputError, match="older init"):
        find_canary()
    (folder / "INIT.sha256").write_text(init_digest() + "\n")
    assert find_canary().initrd == folder / "initrd.gz"
