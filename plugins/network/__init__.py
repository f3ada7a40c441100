"""Network plugins: one per kind (bridge, vlan, nat)."""
