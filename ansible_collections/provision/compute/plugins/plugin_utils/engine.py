"""What the collection's action plugins share: provision's library call for one host, with every node
program sent through Ansible's connection by the ``provision.compute.run`` module."""

from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase


class ProvisionAction(ActionBase):
    """An action plugin that runs one of provision's operations for the task's host."""

    TRANSFERS_FILES = False
    _requires_connection = True
    ARGUMENT_SPEC: dict = {}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validated, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            from provision.engines import ansible_task
            from provision.errors import InputError
            from provision.remote.probe import BOOT
        except ImportError as exc:
            raise AnsibleError("provision is not installed where this playbook runs: %s" % exc) from None
        settings = self._templar.template(task_vars.get("provision", {}))
        name = task_vars.get("inventory_hostname", "")

        def runner(program):
            try:
                answer = self._execute_module(module_name="provision.compute.run", task_vars=task_vars,
                                              module_args={"program": program, "boot": BOOT})
            except AnsibleConnectionFailure as exc:
                answer = {"unreachable": True, "msg": str(exc)}
            return ansible_task.answer(answer)

        try:
            result.update(self.operate(ansible_task, name, settings, runner, args))
        except InputError as exc:
            result.update(failed=True, msg=str(exc))
        return result

    def operate(self, engine, name, settings, runner, args):
        raise NotImplementedError
