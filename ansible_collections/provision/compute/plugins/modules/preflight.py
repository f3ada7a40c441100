#!/usr/bin/python
# Copyright: provision developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""provision.compute.preflight: documentation; the work is its action plugin's, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight
short_description: Check a compute node and decide KVM or software QEMU
description:
  - Probes the node (provision's probe, through Ansible's connection), runs every check of the
    provision plugins installed on the controller, and decides C(virt_type) (C(kvm) or C(qemu)).
  - The settings are the host's C(provision) variable, as Ansible resolved it.
  - Sets C(ansible_facts.provision) to the host's C(provision) variable with C(decision) and C(checks)
    added, so C(provision.decision.virt_type) reads the decision in later tasks while Ansible's
    injection of facts as variables keeps the settings (C(apply) and C(verify) ignore those two keys).
  - Fails the task as C(provision preflight) exits non-zero.
version_added: "0.1.0"
options:
  ignore:
    description: Check ids whose failure does not fail the task (as C(--ignore)); C(all) for every one.
    type: list
    elements: str
    default: []
  fail_on:
    description: C(warn) fails the task on a warning too (as C(--fail-on)).
    type: str
    choices: [fail, warn]
    default: fail
  timeout:
    description: Seconds the node may take to answer.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description: It changes nothing in any mode.
  diff_mode:
    support: none
    description: Nothing to compare.
author:
  - provision developers (@provision)
"""

EXAMPLES = r"""
- name: Can each node run KVM, and what will break
  provision.compute.preflight:
    ignore: [ports.free]

- name: Use the decision later
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} runs guests with {{ ansible_facts.provision.decision.virt_type }}"
"""

RETURN = r"""
decision:
  description: The virt_type decision, its CPU mode and reasons.
  returned: success
  type: dict
  sample: {"virt_type": "qemu", "cpu_mode": "none", "reasons": ["CPU shows neither vmx nor svm"]}
checks:
  description: Every check's id, status, message, evidence and remedy.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # the same options as the action plugin's (plugins/action/preflight.py), which does the work
    argument_spec = {
        "ignore": {"type": "list", "elements": "str", "default": []},
        "fail_on": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
        "timeout": {"type": "float", "default": 30},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.fail_json(msg="provision.compute.preflight runs as an action plugin, on the controller")


if __name__ == "__main__":
    main()
