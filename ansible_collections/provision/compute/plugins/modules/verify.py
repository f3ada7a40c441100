#!/usr/bin/python
# Copyright: provision developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""provision.compute.verify: documentation; the work is its action plugin's, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify
short_description: Report a compute node's drift from its rendered configuration
description:
  - Runs C(provision verify) for the task's host, through Ansible's connection; changes nothing.
  - Fails the task when something drifted, naming each drifted file or libvirt object.
version_added: "0.1.0"
options:
  timeout:
    description: Seconds the node may take.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description: It changes nothing in any mode.
  diff_mode:
    support: none
    description: See C(provision.compute.apply) in diff mode.
author:
  - provision developers (@provision)
"""

EXAMPLES = r"""
- name: Nothing drifted
  provision.compute.verify:
"""

RETURN = r"""
drift:
  description: What differs from the rendered configuration.
  returned: success
  type: list
  elements: str
checks:
  description: One check per managed file and libvirt object.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # the same options as the action plugin's (plugins/action/verify.py), which does the work
    module = AnsibleModule(argument_spec={"timeout": {"type": "float", "default": 30}}, supports_check_mode=True)
    module.fail_json(msg="provision.compute.verify runs as an action plugin, on the controller")


if __name__ == "__main__":
    main()
