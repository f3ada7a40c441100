"""The settings defaults kept between runs: the same as computed afresh, computed afresh the moment any
code they came from changes, and never taken from a file or folder someone else could have written."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from provision.stages.defaults import CACHE_ENV, settings_defaults

PRINT_DEFAULTS = """
import json, sys
from provision.stages.defaults import settings_defaults
from provision.plugins import default_hooks
defaults = settings_defaults(default_hooks())
print(json.dumps({"pydantic imported": "pydantic" in sys.modules, "defaults": defaults}))
"""


def run_defaults(cache, **env) -> dict:
    done = subprocess.run([sys.executable, "-c", PRINT_DEFAULTS], capture_output=True, text=True, check=True,
                          env={**os.environ, CACHE_ENV: str(cache), **env})
    return json.loads(done.stdout)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def kept_with_kvm(hooks, cache):
    """The cache's one file, its defaults changed to say virt_type kvm (as no fresh ones do)."""
    settings_defaults(hooks)
    (entry,) = cache.iterdir()
    kept = json.loads(entry.read_text())
    kept["defaults"]["virt_type"] = "kvm"
    entry.write_text(json.dumps(kept))
    return entry, kept


def entries(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_kept_defaults_are_the_fresh_ones_and_need_no_pydantic(hooks, tmp_path):
    fresh = hooks.settings_model().model_dump(mode="json")
    first = run_defaults(tmp_path / "cache", PROVISION_DISABLE_PLUGIN_AUTOLOAD="1")
    second = run_defaults(tmp_path / "cache", PROVISION_DISABLE_PLUGIN_AUTOLOAD="1")
    assert first == {"pydantic imported": True, "defaults": fresh}
    assert second == {"pydantic imported": False, "defaults": fresh}
    (entry,) = (tmp_path / "cache").iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600 and (tmp_path / "cache").stat().st_mode & 0o777 == 0o700


def test_a_change_in_any_module_the_defaults_came_from_is_seen_at_once(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "cached_demo.py").write_text(textwrap.dedent("""
        import pluggy
        from cached_demo_values import DEFAULT
        hookimpl = pluggy.HookimplMarker("provision")

        @hookimpl
        def provision_settings_schema():
            return {"cached_demo": (int, DEFAULT)}
    """))
    values = plugins / "cached_demo_values.py"  # imported by the plugin: not the plugin's own file
    env = {"PYTHONPATH": str(plugins), "PROVISION_PLUGINS": "cached_demo"}

    values.write_text("DEFAULT = 1\n")
    assert run_defaults(tmp_path / "cache", **env)["defaults"]["cached_demo"] == 1
    kept = run_defaults(tmp_path / "cache", **env)
    assert kept["defaults"]["cached_demo"] == 1 and not kept["pydantic imported"]
    values.write_text("DEFAULT = 2\n")  # the same size: only the modification time tells
    stat = values.stat()
    os.utime(values, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = run_defaults(tmp_path / "cache", **env)
    assert again["defaults"]["cached_demo"] == 2 and again["pydantic imported"]


def test_the_private_file_is_trusted_as_the_users_own(hooks, cache):
    kept_with_kvm(hooks, cache)
    assert settings_defaults(hooks)["virt_type"] == "kvm"  # what makes the checks below matter


@pytest.mark.parametrize("spoil", ["group-writable file", "group-writable folder", "symlink", "not json", "wrong shape"])
def test_a_file_someone_else_could_have_written_or_a_broken_one_is_not_used(hooks, cache, tmp_path, spoil):
    entry, kept = kept_with_kvm(hooks, cache)
    if spoil == "group-writable file":
        entry.chmod(0o664)
    elif spoil == "group-writable folder":
        cache.chmod(0o770)
    elif spoil == "symlink":
        planted = tmp_path / "planted.json"
        entry.rename(planted)
        entry.symlink_to(planted)
    elif spoil == "not json":
        entry.write_text("{not json")
    else:
        entry.write_text(json.dumps({**kept, "modules": "everything"}))
    assert settings_defaults(hooks)["virt_type"] == "auto"
    if spoil == "group-writable folder":  # nothing is written where others can write
        assert json.loads(entry.read_text())["defaults"]["virt_type"] == "kvm"
    else:  # replaced by a good one, as the user's own
        assert not entry.is_symlink() and entry.stat().st_mode & 0o777 == 0o600
        assert json.loads(entry.read_text())["defaults"]["virt_type"] == "auto"
        assert entries(cache) == [entry.name]


@pytest.mark.root
def test_a_file_owned_by_another_user_is_not_used(hooks, cache):
    entry, _ = kept_with_kvm(hooks, cache)
    os.chown(entry, 65534, 65534)
    assert settings_defaults(hooks)["virt_type"] == "auto"


def test_the_cache_can_be_turned_off_and_a_folder_that_cannot_be_made_is_no_error(hooks, monkeypatch, tmp_path):
    fresh = hooks.settings_model().model_dump(mode="json")
    monkeypatch.setenv(CACHE_ENV, "off")
    assert settings_defaults(hooks) == fresh
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    assert settings_defaults(hooks) == fresh


def test_the_cache_lives_in_the_users_cache_folder(monkeypatch, tmp_path):
    from provision.stages.defaults import cache_folder

    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == str(tmp_path / "provision")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_folder() == str(tmp_path / ".cache" / "provision")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: a relative path is to be ignored
    assert cache_folder() == str(tmp_path / ".cache" / "provision")


@pytest.mark.root
def test_root_with_another_users_home_makes_nothing_there(hooks, monkeypatch, tmp_path):
    """sudo keeps the user's HOME: root must not leave a root-owned folder in it (the user could never
    use the cache again), so it goes without one."""
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    assert settings_defaults(hooks) == hooks.settings_model().model_dump(mode="json")
    assert list(home.iterdir()) == []


def test_a_write_killed_midway_leaves_nothing_the_next_write_keeps(hooks, cache):
    """SIGKILL between the temporary file and its rename leaves the temporary file: the next write
    removes it once it is old enough not to be another run's, and nothing else in the folder."""
    cache.mkdir(mode=0o700)
    abandoned, fresh, other = (cache / ".settings-defaults-killed.tmp", cache / ".settings-defaults-writing.tmp",
                               cache / "notes.txt")
    for path in (abandoned, fresh, other):
        path.write_text("{")
    old = abandoned.stat().st_mtime - 3600
    os.utime(abandoned, (old, old))
    os.utime(other, (old, old))
    settings_defaults(hooks)
    assert not abandoned.exists() and fresh.exists() and other.exists()
    assert len([p for p in cache.iterdir() if p.name.startswith("settings-defaults-")]) == 1
