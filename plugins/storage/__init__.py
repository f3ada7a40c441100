"""Storage plugins: one per pool type (nfs, lvm, iscsi, rbd)."""
