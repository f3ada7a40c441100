"""Which node a guest command talks to: each way of naming it wrongly is a clear error."""

import pytest

from provision.errors import InputError
from provision.guests.target import GuestTarget, NodeUnreachable, resolve_target


def inventory(tmp_path, hosts: str) -> str:
    path = tmp_path / "site.yml"
    path.write_text(f"all:\n  hosts:\n{hosts}")
    return str(path)


def test_connect_and_inventory_together_are_refused(tmp_path, hooks):
    inv = inventory(tmp_path, "    n1: {ansible_connection: local}\n")
    with pytest.raises(InputError, match=r"^use either --connect or --inventory/-i, not both$"):
        resolve_target(connect="qemu:///system", inventory=inv, limit=None, virt_type=None, hooks=hooks)


def test_an_inventory_selection_of_two_nodes_is_refused(tmp_path, hooks):
    inv = inventory(tmp_path, "    n1: {ansible_connection: local}\n    n2: {ansible_connection: local}\n")
    with pytest.raises(InputError) as err:
        resolve_target(connect=None, inventory=inv, limit=None, virt_type=None, hooks=hooks)
    assert str(err.value) == ("-i/-l must select exactly one node for a guest command (selected 2: n1, n2); "
                              "narrow it with --limit")
    assert resolve_target(connect=None, inventory=inv, limit="n2", virt_type=None, hooks=hooks).node.name == "n2"


def test_a_node_reached_over_docker_cannot_manage_guests(tmp_path, hooks):
    inv = inventory(tmp_path, "    c1: {ansible_connection: docker}\n")
    with pytest.raises(InputError, match=r"^c1: guests are managed over SSH or locally, not over docker://$"):
        resolve_target(connect=None, inventory=inv, limit=None, virt_type=None, hooks=hooks)


def test_a_uri_whose_node_cannot_be_probed_needs_a_pinned_virt_type(hooks):
    target = resolve_target(connect="qemu+tls://node9.example.com/system", inventory=None, limit=None,
                            virt_type=None, hooks=hooks)
    assert target.node is None
    with pytest.raises(InputError, match=r"^cannot probe the node behind qemu\+tls://node9\.example\.com/system "
                                         r"to decide virt_type: pass --virt-type qemu$"):
        target.decision(hooks)
    assert GuestTarget(target.uri, None, "qemu").decision(hooks).virt_type == "qemu"  # pinned: nothing to probe


def test_an_unreachable_node_says_why_and_what_to_pass(tmp_path, hooks):
    """Port 1 on the loopback: nothing listens, so ssh is refused at once."""
    inv = inventory(tmp_path, "    n1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    target = resolve_target(connect=None, inventory=inv, limit=None, virt_type=None, hooks=hooks)
    assert target.uri == "qemu+ssh://127.0.0.1:1/system"
    with pytest.raises(NodeUnreachable) as err:
        target.decision(hooks, timeout=5)
    assert str(err.value).startswith("cannot decide virt_type for n1: ")
    assert "Connection refused" in str(err.value) and str(err.value).endswith("; pass --virt-type qemu")


def test_an_unreachable_node_is_exit_1_for_guest_commands_as_for_every_other(tmp_path, cli):
    from provision import errors
    from provision.remote import probe
    from provision.stages import render

    assert NodeUnreachable is probe.Unreachable is render.Unreachable is errors.Unreachable
    assert errors.Unreachable.exit_code == 1
    inv = inventory(tmp_path, "    n1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    result = cli("guest", "create", "pvtest-unreach", "--kernel", "/nonexistent", "-i", inv)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("provision: error: ") and "Connection refused" in result.output
