"""provision.compute.preflight, on the controller: see plugins/modules/preflight.py."""

from __future__ import annotations

from ansible_collections.provision.compute.plugins.plugin_utils.engine import ProvisionAction


class ActionModule(ProvisionAction):
    ARGUMENT_SPEC = {"ignore": {"type": "list", "elements": "str", "default": []},
                     "fail_on": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
                     "timeout": {"type": "float", "default": 30}}

    def operate(self, engine, name, settings, runner, args):
        return engine.preflight(name, settings, runner, ignore=args["ignore"],
                                fail_on=args["fail_on"], timeout=args["timeout"])
