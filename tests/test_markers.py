"""Markers follow fixtures: every collected test that starts libvirtd or a namespace node carries the
marker that lets a developer leave it out."""

from tests.conftest import FIXTURE_MARKERS


def test_every_test_using_a_daemon_fixture_carries_its_markers(request):
    missing = []
    for item in request.session.items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marks in FIXTURE_MARKERS.items():
            if fixture in used:
                missing += [f"{item.nodeid}: {mark}" for mark in marks if item.get_closest_marker(mark) is None]
    assert missing == []
    assert len(request.session.items) > 1 or request.config.getoption("-k")  # run within the suite, not alone
