"""provision.compute.verify, on the controller: see plugins/modules/verify.py."""

from __future__ import annotations

from ansible_collections.provision.compute.plugins.plugin_utils.engine import ProvisionAction


class ActionModule(ProvisionAction):
    ARGUMENT_SPEC = {"timeout": {"type": "float", "default": 30}}

    def operate(self, engine, name, settings, runner, args):
        return engine.verify(name, settings, runner, timeout=args["timeout"])
