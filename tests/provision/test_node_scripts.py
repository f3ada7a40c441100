"""What runs on nodes keeps its promise: Python 3.6 syntax, standard library only (pyroute2 in the netlink
step, which Debian's python3-pyroute2 brings), since a node has its own Python and nothing of ours."""

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NODE_SCRIPTS = {
    "provision/probe_script.py": set(),
    "provision/apply_agent.py": set(),
    "plugins/network/netlink_agent.py": {"pyroute2"},
}


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("script", NODE_SCRIPTS)
def test_a_node_script_is_python_3_6_and_standard_library_only(script):
    source = (ROOT / script).read_text()
    tree = ast.parse(source, filename=script, feature_version=(3, 6))
    outside = {n for n in imported(tree) if n not in sys.stdlib_module_names} - NODE_SCRIPTS[script]
    assert outside == set(), f"{script} imports {sorted(outside)}, which a node may not have"


def test_every_script_sent_to_nodes_is_listed():
    """A module read as text to be sent (``Path(__file__).with_name(...).read_text()``) is a node script."""
    sent = set()
    for path in [*(ROOT / "provision").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "with_name" and call.args \
                    and isinstance(call.args[0], ast.Constant) and str(call.args[0].value).endswith(".py"):
                sent.add(str((path.parent / call.args[0].value).relative_to(ROOT)))
    assert sent == set(NODE_SCRIPTS), sent


def test_the_type_checkers_name_costs_a_node_nothing():
    for script in NODE_SCRIPTS:
        source = (ROOT / script).read_text()
        assert "\nimport typing" not in source and "\nfrom typing" not in source, script
        assert Path(ROOT / script).exists()
