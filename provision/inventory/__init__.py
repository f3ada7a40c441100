"""Ansible-style YAML inventories: load, merge ``provision`` settings, validate, select hosts.

Nothing is imported here: a command without -i never pays for the YAML parser."""
