"""A key pasted into the wrong field is not quoted back: every field of a mapping that holds a secret
or names its file (an RBD pool), and a mapping that does (an iSCSI pool's ``chap``) given as text."""

import json

import pytest

from tests.cli.test_render import CHAP, SECRET

RBD = {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
       "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/ceph.client.nova.key"}
ISCSI = {"name": "san1", "type": "iscsi", "portal": "192.0.2.50", "target": "iqn.2026-01.com.example:san1",
         "initiator": "iqn.2026-01.com.example:n1", "chap": {"username": "u", "password_file": "/etc/chap"}}


@pytest.mark.parametrize(("entry", "field", "message"), [
    (RBD, "name", "must be 1-64 letters"),
    (RBD, "pool", "must be letters, digits"),
    (RBD, "user", "must be letters, digits"),
    (RBD, "secret_uuid", "input should be a valid UUID"),
    (ISCSI, "chap", "input should be a valid dictionary"),
])
@pytest.mark.parametrize("pasted", [SECRET, CHAP + " !", "AQBz+4GRf/AAAA=="])
def test_a_secret_pasted_into_a_field_beside_one_is_not_quoted(cli, tmp_path, entry, field, message, pasted):
    source = tmp_path / "site.json"
    source.write_text(json.dumps({"all": {"hosts": {"n1": {"provision": {"storage": [{**entry, field: pasted}]}}}}}))
    result = cli("inventory", "validate", "-i", str(source))
    assert result.exit_code == 2
    assert f"{source}: host n1: provision.storage[0].{field}: {message}" in result.stderr
    assert "(the value is not shown: this field sits beside a secret" in result.stderr
    assert pasted not in result.stderr.replace("provision:", "") and "found `" not in result.stderr


def test_a_field_beside_no_secret_still_quotes_the_value(cli, tmp_path):
    source = tmp_path / "site.json"
    source.write_text(json.dumps({"all": {"hosts": {"n1": {"provision": {"virt_type": "kvmm",
                                                                          "hypervisor": {"cpu_mode": "hostpassthrough"}}}}}}))
    result = cli("inventory", "validate", "-i", str(source))
    assert "provision.virt_type: must be one of auto, kvm, qemu (got 'kvmm')" in result.stderr
    assert "(got 'hostpassthrough')" in result.stderr
