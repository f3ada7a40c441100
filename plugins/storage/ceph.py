"""What Ceph itself fixes, shared by the RBD plugin and its settings schema (which pydantic makes costly
to import: the plugin loads it only when an inventory is read)."""

MON_PORT = 6789  # a Ceph monitor's port (msgr v1) when the inventory names none
CEPH_CONF = "/etc/ceph/ceph.conf"
