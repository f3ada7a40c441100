#!/usr/bin/python
# Copyright: provision developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of provision's node programs on the node and return its JSON answer."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run
short_description: Run one of provision's node programs on the node
description:
  - Runs a program of provision's (the probe, the remedies or the apply agent, Python 3.6 and the
    standard library) with the node's Python, the program on its standard input, and returns the
    JSON object it prints.
  - Used by this collection's action plugins; not meant to be called on its own.
version_added: "0.1.0"
options:
  program:
    description: The program's text, as provision builds it.
    type: str
    required: true
  boot:
    description: The C(-c) argument that reads the program from standard input.
    type: str
    required: true
  timeout:
    description: Seconds the program may run.
    type: float
    default: 3600
author:
  - provision developers (@provision)
"""

EXAMPLES = r"""
# Not called directly: provision.compute.preflight, apply and verify call it.
"""

RETURN = r"""
answer:
  description: The JSON object the program printed.
  returned: success
  type: dict
"""

import json
import subprocess
import sys

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={"program": {"type": "str", "required": True},
                       "boot": {"type": "str", "required": True},
                       "timeout": {"type": "float", "default": 3600}},
        supports_check_mode=True,
    )
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", module.params["boot"]],
                              input=module.params["program"].encode("utf-8"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=module.params["timeout"], check=False)
    except subprocess.TimeoutExpired:
        module.fail_json(msg="the program gave no answer within %s s" % module.params["timeout"])
    if done.returncode:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        module.fail_json(msg="the program exited %d: %s" % (done.returncode, " ".join(last)))
    try:
        answer = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        module.fail_json(msg="the program printed no answer: %r" % done.stdout[:200])
    module.exit_json(changed=False, answer=answer)


if __name__ == "__main__":
    main()
