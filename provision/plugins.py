"""The plugin manager: built-ins, then entry points, then named modules.

Built-in plugins are ordinary plugins, registered from :data:`DEFAULT_PLUGINS`.
Third-party plugins are found in the ``provision.plugins`` entry-point group,
unless ``PROVISION_DISABLE_PLUGIN_AUTOLOAD`` is set. ``PROVISION_PLUGINS``
names extra modules to load (comma-separated), which works with autoload off.
"""

from __future__ import annotations

import importlib
import os
from functools import cache, cached_property
from importlib.metadata import entry_points
from typing import Any

import pluggy

from provision import hookspecs
from provision.errors import InputError

ENTRY_POINT_GROUP = "provision.plugins"
AUTOLOAD_OFF_ENV = "PROVISION_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_PLUGINS_ENV = "PROVISION_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "provision_plugins.hypervisor",
    "provision_plugins.cpu",
    "provision_plugins.kvm",
    "provision_plugins.host",
    "provision_plugins.qemu",
    "provision_plugins.libvirt",
    "provision_plugins.libvirt_guests",
    "provision_plugins.resources",
    "provision_plugins.clock",
    "provision_plugins.ports",
    "provision_plugins.network.host_config",
    "provision_plugins.network.bridge",
    "provision_plugins.network.vlan",
    "provision_plugins.network.nat",
    "provision_plugins.storage.pools",
    "provision_plugins.storage.lvm",
    "provision_plugins.storage.nfs",
    "provision_plugins.storage.iscsi",
    "provision_plugins.storage.rbd",
)


def make_plugin_manager(*, autoload: bool | None = None, extra: tuple[str, ...] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with every hook checked against its spec."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_OFF_ENV)
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if pm.get_plugin(ep.name) is None:
                pm.register(ep.load(), name=ep.name)
    named = [n.strip() for n in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if n.strip()]
    for name in (*named, *extra):
        if pm.get_plugin(name) is None:
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise InputError(f"{EXTRA_PLUGINS_ENV}: cannot import plugin {name!r}: {exc}") from None
            pm.register(module, name=name)
    pm.check_pending()
    return pm


def _in_load_order(results: list[list]) -> list:
    """Flatten a hook's per-plugin results in plugin load order (pluggy calls the last registered first)."""
    return [item for part in reversed(results) for item in part]


class Hooks:
    """A small typed façade over the hooks, so the core never calls ``pm.hook`` itself.

    Answers that depend only on the loaded plugins are computed once per façade.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    @cached_property
    def probe_operations(self) -> dict[str, dict[str, Any]]:
        """Every plugin's probe operations; one key asked by several plugins is read once,
        with their ``keep`` line filters united."""
        merged: dict[str, dict[str, Any]] = {}
        for ops in self.pm.hook.provision_probe():
            for key, op in ops.items():
                if key in merged and "keep" in op and "keep" in merged[key]:
                    op = {**op, "keep": sorted(set(merged[key]["keep"]) | set(op["keep"]))}
                merged[key] = op
        return merged

    @cached_property
    def check_catalog(self) -> dict[str, str]:
        catalog: dict[str, str] = {}
        for part in self.pm.hook.provision_check_catalog():
            catalog.update(part)
        return dict(sorted(catalog.items()))

    def checks(self, facts, settings):
        return _in_load_order(self.pm.hook.provision_checks(facts=facts, settings=settings))

    def virt_decision(self, facts, settings):
        return self.pm.hook.provision_virt_decision(facts=facts, settings=settings)

    @cached_property
    def settings_model(self):
        """The pydantic model of the ``provision`` variable, from every plugin's part."""
        from provision.settings import build_settings_model

        return build_settings_model(list(reversed(self.pm.hook.provision_settings_schema())))

    def validate_settings(self, settings) -> list[tuple[tuple, str]]:
        return _in_load_order(self.pm.hook.provision_validate_settings(settings=settings))

    @cached_property
    def template_paths(self) -> tuple[str, ...]:
        return tuple(_in_load_order(self.pm.hook.provision_template_paths()))

    def render(self, ctx):
        """(plugin name, files) for each plugin that renders, in load order."""
        for impl in self.pm.hook.provision_render.get_hookimpls():  # attribution needs one call each
            yield impl.plugin_name, impl.function(ctx=ctx) or []

    def apply_objects(self, ctx, files) -> list:
        return _in_load_order(self.pm.hook.provision_apply_objects(ctx=ctx, files=files))

    def apply_node_steps(self, ctx, files) -> list:
        return _in_load_order(self.pm.hook.provision_apply_node_steps(ctx=ctx, files=files))

    def network_links(self, settings) -> list[dict]:
        return _in_load_order(self.pm.hook.provision_network_links(settings=settings))

    def guest_backend(self, uri: str):
        return self.pm.hook.provision_guest_backend(uri=uri)

    def plugin_hooks(self) -> list[tuple[str, list[str]]]:
        """Each registered plugin with the hooks it implements, in load order."""
        return [(name, sorted(c.name for c in self.pm.get_hookcallers(plugin) or []))
                for name, plugin in self.pm.list_name_plugin()]


def default_hooks() -> Hooks:
    """The hooks for this process's environment (cached per value of the two variables)."""
    return _hooks_for(os.environ.get(AUTOLOAD_OFF_ENV, ""), os.environ.get(EXTRA_PLUGINS_ENV, ""))


@cache
def _hooks_for(autoload_off: str, extra: str) -> Hooks:
    return Hooks(make_plugin_manager())
