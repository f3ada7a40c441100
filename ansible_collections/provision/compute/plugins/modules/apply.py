#!/usr/bin/python
# Copyright: provision developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""provision.compute.apply: documentation; the work is its action plugin's, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apply
short_description: Make a compute node match its rendered configuration
description:
  - Runs C(provision apply) for the task's host, through Ansible's connection, with its C(provision)
    variable as Ansible resolved it; installs, loads and starts what its preflight finds missing
    (remedies), writes its files, defines its libvirt networks, secrets and pools, rolls back on
    failure, then verifies.
  - In check mode only plans; C(changed) says whether anything would change.
version_added: "0.1.0"
options:
  ignore:
    description: Preflight check ids whose failure does not refuse the node.
    type: list
    elements: str
    default: []
  force:
    description: Redefine networks and pools that running guests use.
    type: bool
    default: false
  remedies:
    description: Install, load and start what preflight finds missing (false as C(--no-remedies)).
    type: bool
    default: true
  timeout:
    description: Seconds the node may take.
    type: float
    default: 120
attributes:
  check_mode:
    support: full
    description: Plans and changes nothing; C(changed) is what would change.
  diff_mode:
    support: full
    description: Each file's and libvirt object's diff, secrets redacted.
author:
  - provision developers (@provision)
"""

EXAMPLES = r"""
- name: Configure the compute nodes, ten percent at a time
  hosts: compute
  serial: "10%"
  max_fail_percentage: 5
  tasks:
    - provision.compute.apply:
"""

RETURN = r"""
report:
  description: The node's steps (kind, target, action, why, seconds), as C(provision apply -o json).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # the same options as the action plugin's (plugins/action/apply.py), which does the work
    argument_spec = {
        "ignore": {"type": "list", "elements": "str", "default": []},
        "force": {"type": "bool", "default": False},
        "remedies": {"type": "bool", "default": True},
        "timeout": {"type": "float", "default": 120},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.fail_json(msg="provision.compute.apply runs as an action plugin, on the controller")


if __name__ == "__main__":
    main()
