"""provision.compute.apply, on the controller: see plugins/modules/apply.py."""

from __future__ import annotations

from ansible_collections.provision.compute.plugins.plugin_utils.engine import ProvisionAction


class ActionModule(ProvisionAction):
    ARGUMENT_SPEC = {"ignore": {"type": "list", "elements": "str", "default": []},
                     "force": {"type": "bool", "default": False},
                     "remedies": {"type": "bool", "default": True},
                     "timeout": {"type": "float", "default": 120}}

    def operate(self, engine, name, settings, runner, args):
        return engine.apply(name, settings, runner, check=bool(self._task.check_mode),
                            diff=bool(self._task.diff), ignore=args["ignore"],
                            force=args["force"], remedies=args["remedies"],
                            timeout=args["timeout"])
