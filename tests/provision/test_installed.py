"""Software a feature needs on the node: programs and loadable pieces, from recorded probe answers."""

import pytest

from provision.facts import Facts
from provision.installed import Software, probe, software_check

TOOLS = Software("demo tools", programs=("demo-ctl", "demo-admin"),
                 pieces=(("demo backend", ("/usr/lib/*/demo/backend.so", "/usr/lib64/demo/backend.so")),),
                 remedy="apt-get install demo")


def facts(programs: dict, globs: dict) -> Facts:
    return Facts({"demo.installed": {"programs": programs, "globs": globs}})


ALL = facts({"demo-ctl": "/usr/sbin/demo-ctl", "demo-admin": "/usr/bin/demo-admin"},
            {"/usr/lib/*/demo/backend.so": [], "/usr/lib64/demo/backend.so": ["/usr/lib64/demo/backend.so"]})
NO_ADMIN_NO_BACKEND = facts({"demo-ctl": "/usr/sbin/demo-ctl", "demo-admin": None},
                            {"/usr/lib/*/demo/backend.so": [], "/usr/lib64/demo/backend.so": []})


def test_one_operation_asks_for_everything_of_several_features():
    other = Software("other", programs=("demo-ctl", "zz"), pieces=(("x", ("/opt/x.so",)),))
    assert probe("demo.installed", TOOLS, other) == {"demo.installed": {
        "op": "installed", "programs": ["demo-admin", "demo-ctl", "zz"],
        "globs": ["/opt/x.so", "/usr/lib/*/demo/backend.so", "/usr/lib64/demo/backend.so"]}}


def test_installed_passes_with_where_each_was_found():
    result = software_check(ALL, "demo.installed", TOOLS, needed=True, unneeded="")
    assert (result.status, result.message) == ("pass", "demo tools: installed")
    assert result.evidence == {"demo-ctl": "/usr/sbin/demo-ctl", "demo-admin": "/usr/bin/demo-admin",
                               "demo backend": "/usr/lib64/demo/backend.so"}


def test_missing_and_needed_fails_naming_each_missing_thing_and_the_remedy():
    result = software_check(NO_ADMIN_NO_BACKEND, "demo.installed", TOOLS, needed=True, unneeded="")
    assert result.status == "fail"
    assert result.message == "demo tools: missing demo-admin, demo backend (the inventory needs it)"
    assert result.remedy == "apt-get install demo"
    assert result.evidence["demo backend"] == "not found in /usr/lib/*/demo/backend.so, /usr/lib64/demo/backend.so"


@pytest.mark.parametrize(("node", "state"), [(ALL, "installed"), (NO_ADMIN_NO_BACKEND, "missing demo-admin, demo backend")])
def test_not_needed_is_skipped_and_still_says_what_is_there(node, state):
    result = software_check(node, "demo.installed", TOOLS, needed=False, unneeded="no demo in the inventory")
    assert (result.status, result.message) == ("skip", f"not needed: no demo in the inventory (demo tools: {state})")


def test_a_probe_error_is_skipped_as_unknown_not_taken_for_missing():
    node = Facts({"demo.installed": {"error": "EACCES: Permission denied"}})
    result = software_check(node, "demo.installed", TOOLS, needed=True, unneeded="")
    assert (result.status, result.message) == ("skip", "cannot tell whether demo tools is installed: EACCES: Permission denied")
