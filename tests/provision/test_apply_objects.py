"""provision_apply_objects: each plugin names the libvirt objects its own rendered XML defines."""

import pytest

from provision.errors import InputError
from provision.inventory.select import select_nodes
from provision.plugins import Hooks, default_hooks, make_plugin_manager
from provision.stages.apply import objects_for
from provision.stages.render import render_all
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "inventories" / "example")
PINNED = {"cmp1"}  # example hosts whose virt_type is pinned (no preflight needed to render them)


def rendered(hooks, limit="cmp1"):
    nodes = select_nodes(inventory=EXAMPLE, limit=limit, hooks=hooks).nodes
    assert nodes[0].settings["virt_type"] != "auto"
    return nodes, render_all(nodes=nodes, decisions={}, hooks=hooks)


def test_each_plugin_names_its_objects_in_the_order_apply_defines_them():
    hooks = default_hooks()
    nodes, files = rendered(hooks)
    objects = objects_for(nodes=nodes, rendered=files, decisions={}, hooks=hooks)["cmp1"]
    by_label = {(o["kind"], o["label"]): o for o in objects}
    kinds = [o["kind"] for o in objects]
    assert kinds == sorted(kinds, key=("network", "secret", "pool").index)
    assert by_label["network", "guestnat"]["plugin"] == "provision_plugins.network.nat"
    assert by_label["network", "br-provider"]["plugin"] == "provision_plugins.network.bridge"
    ceph = by_label["secret", "457eb676-33da-42ec-9a8c-9293d545c337"]
    assert (ceph["plugin"], ceph["value_file"], ceph["value_format"]) == (
        "provision_plugins.storage.rbd", "/etc/ceph/client.nova.key", "base64")
    chap = next(o for o in objects if o["kind"] == "secret" and o["plugin"].endswith("iscsi"))
    assert chap["value_format"] == "plain" and chap["label"] == chap["usage"] and chap["usage"].startswith("provision-")
    assert by_label["pool", "nova-vg"]["build"] is True and "build" not in by_label["pool", "vms"]
    # every object's XML is its rendered file's content, and every rendered libvirt XML file is an object
    contents = {f.target: f.content for f in files["cmp1"]}
    assert all(contents[o["file"]] == o["xml"] for o in objects)
    assert {o["file"] for o in objects} == {t for t in contents if t.startswith("/etc/provision/libvirt/")}


def test_a_plugin_that_names_a_wrong_object_is_an_input_error():
    hooks = Hooks(make_plugin_manager(autoload=False, extra=("tests.fixture_plugins.bad_objects",)))
    nodes, files = rendered(hooks)
    with pytest.raises(InputError) as err:
        objects_for(nodes=nodes, rendered=files, decisions={}, hooks=hooks)
    text = str(err.value)
    assert "cmp1" in text
    assert "names /etc/provision/libvirt/pool-nobody.xml as a libvirt pool, but no plugin renders that file" in text
    assert "provision_plugins.storage.rbd names /etc/provision/libvirt/pool-vms.xml as a libvirt network, " \
           "but its XML is a <pool>" in text
