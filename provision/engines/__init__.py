"""Ways of running provision beyond its own SSH engine (inside an Ansible task)."""
