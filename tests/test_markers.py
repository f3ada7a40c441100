"""Markers say what a test needs, read from the code it runs: a test whose own body or any fixture it
uses makes a namespace node (``OverlayNode``, ``HostNetwork``) must be ``netns``; one that starts a
libvirtd of its own or uses the suite's must be ``libvirt``; both imply ``root``. Then ``-m "not libvirt
and not netns"`` makes no namespace and starts no daemon, and ``-m "not root"`` runs as anyone."""

import inspect

from tests.conftest import ALL_ITEMS

NEEDS = {
    "netns": ("OverlayNode(", "HostNetwork(", "add_managed_node(", '"ip", "netns"'),
    "libvirt": ("libvirtd -d", '"libvirtd", "-d"', "OverlayNode(tmp_path", "def libvirtd("),
}


def sources(item) -> list[str]:
    found = [inspect.getsource(item.function)] if hasattr(item, "function") else []
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(info, "names_closure", ()):
        for definition in info.name2fixturedefs.get(name, ()):
            try:
                found.append(inspect.getsource(definition.func))
            except (OSError, TypeError):  # pytest's own fixtures
                continue
    return found


def test_a_test_that_makes_namespaces_or_uses_libvirtd_is_marked_so(request):
    missing = []
    items = request.config.stash[ALL_ITEMS]
    for item in items:
        text = "\n".join(sources(item))
        for mark, signs in NEEDS.items():
            if any(sign in text for sign in signs) and item.get_closest_marker(mark) is None:
                missing.append(f"{item.nodeid}: {mark}")
            if any(sign in text for sign in signs) and item.get_closest_marker("root") is None:
                missing.append(f"{item.nodeid}: root")
    assert missing == []
