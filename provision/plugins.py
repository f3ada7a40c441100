"""The plugin manager: built-ins, then entry points, then named modules.

Built-in plugins are ordinary plugins, registered from :data:`DEFAULT_PLUGINS`.
Third-party plugins are found in the ``provision.plugins`` entry-point group,
unless ``PROVISION_DISABLE_PLUGIN_AUTOLOAD`` is set. ``PROVISION_PLUGINS``
names extra modules to load (comma-separated), which works with autoload off.
``PROVISION_DISABLE_PLUGINS`` (or ``provision --disable-plugin NAME``) blocks plugins by name,
as pytest's ``-p no:NAME``: the registered name, or its last dotted part (``kvm``).
"""

from __future__ import annotations

import importlib
import os
from functools import cache, cached_property
from importlib.metadata import entry_points
from typing import Any

import pluggy

from provision import hookspecs
from provision.api import json_data
from provision.errors import InputError

ENTRY_POINT_GROUP = "provision.plugins"
AUTOLOAD_OFF_ENV = "PROVISION_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_PLUGINS_ENV = "PROVISION_PLUGINS"
DISABLE_ENV = "PROVISION_DISABLE_PLUGINS"


class PluginError(InputError):
    """The loaded plugins contradict each other (a check id, settings field or probe key twice)."""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "provision_plugins.hypervisor",
    "provision_plugins.cpu",
    "provision_plugins.kvm",
    "provision_plugins.host",
    "provision_plugins.pci",
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
    disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    found: set[str] = set()

    def blocked(name: str) -> bool:
        hit = {d for d in disabled if d in (name, name.rpartition(".")[2])}
        found.update(hit)
        return bool(hit)

    for name in DEFAULT_PLUGINS:
        if not blocked(name):
            pm.register(importlib.import_module(name), name=name)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_OFF_ENV)
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if pm.get_plugin(ep.name) is None and not blocked(ep.name):
                pm.register(ep.load(), name=ep.name)
    named = [n.strip() for n in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if n.strip()]
    for name in (*named, *extra):
        if blocked(name):
            continue
        if pm.get_plugin(name) is None:
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise InputError(f"{EXTRA_PLUGINS_ENV}: cannot import plugin {name!r}: {exc}") from None
            pm.register(module, name=name)
    if disabled - found:
        raise InputError(f"{DISABLE_ENV} / --disable-plugin: no plugin named {', '.join(sorted(disabled - found))}; "
                         "`provision plugins` lists them")
    pm.check_pending()
    return pm


def _by_plugin(caller, results: list) -> list[tuple[str, Any]]:
    """A hook's results with the plugin that gave each, in plugin load order (pluggy calls the last
    registered first; every implementation of the hooks this is used for returns a value, so results
    and implementations pair up)."""
    impls = list(reversed(caller.get_hookimpls()))
    names = [i.plugin_name for i in impls] if len(impls) == len(results) else ["a plugin"] * len(results)
    return list(reversed(list(zip(names, results, strict=True))))


def _in_load_order(results: list[list]) -> list:
    """Flatten a hook's per-plugin results in plugin load order (pluggy calls the last registered first)."""
    return [item for part in reversed(results) for item in part]


def _merge_operations(by_plugin: list[tuple[str, dict]]) -> dict[str, dict[str, Any]]:
    """Probe operations of several plugins as one: one key asked by several plugins for the same
    operation is read once, with their ``keep`` line filters united; for different operations it is refused."""
    merged: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for plugin, ops in by_plugin:
        for key, op in ops.items():
            try:
                json_data(op, f"{plugin}: probe operation {key!r}")
            except ValueError as exc:
                raise PluginError(str(exc)) from None
            if key in merged:
                same = {k: v for k, v in op.items() if k != "keep"} == {k: v for k, v in merged[key].items() if k != "keep"}
                if not same:
                    raise PluginError(f"probe key {key!r} is gathered differently by {owner[key]} and {plugin}")
                if "keep" in op and "keep" in merged[key]:
                    op = {**op, "keep": sorted(set(merged[key]["keep"]) | set(op["keep"]))}
            merged[key] = op
            owner.setdefault(key, plugin)
    return merged


class Hooks:
    """A small typed façade over the hooks, so the core never calls ``pm.hook`` itself.

    Answers that depend only on the loaded plugins are computed once per façade.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._callers: dict[str, list] = {}

    @cached_property
    def probe_operations(self) -> dict[str, dict[str, Any]]:
        """Every plugin's probe operations, merged (:func:`_merge_operations`)."""
        hook = self.pm.hook.provision_probe
        return _merge_operations(_by_plugin(hook, hook()))

    def settings_operations(self, settings) -> dict[str, dict[str, Any]]:
        """Every plugin's probe operations for one node's settings (usually none), merged."""
        hook = self.pm.hook.provision_probe_settings
        return _merge_operations(_by_plugin(hook, hook(settings=settings)))

    def functional_operations(self, canary) -> dict[str, dict[str, Any]]:
        """Every plugin's probe operations and every plugin's functional ones for ``canary`` (a
        :class:`~provision.guests.canary.NodeCanary`), merged into one round trip."""
        probe, functional = self.pm.hook.provision_probe, self.pm.hook.provision_probe_functional
        return _merge_operations([*_by_plugin(probe, probe()), *_by_plugin(functional, functional(canary=canary))])

    @cached_property
    def check_catalog(self) -> dict[str, str]:
        """Every plugin's check ids; one id declared by two plugins is refused, naming both."""
        catalog: dict[str, str] = {}
        owner: dict[str, str] = {}
        hook = self.pm.hook.provision_check_catalog
        for plugin, part in _by_plugin(hook, hook()):
            for check_id, summary in part.items():
                if check_id in owner:
                    raise PluginError(f"check id {check_id!r} is declared by both {owner[check_id]} and {plugin}")
                owner[check_id] = plugin
                catalog[check_id] = summary
        return dict(sorted(catalog.items()))

    def checks(self, facts, settings):
        """Every plugin's check results, in load order; a plugin whose hook raises gets one internal-error
        result per check id it declares, and the other plugins' checks still run."""
        from provision.checks import internal_error

        results: list = []
        for plugin_name, caller in self._subset_callers("provision_checks"):
            try:
                for part in caller(facts=facts, settings=settings):  # one plugin's answer, as a list of one
                    results += part or []
            except Exception as exc:
                ids = self._catalog_by_plugin.get(plugin_name) or [plugin_name]
                results += [internal_error(check_id, plugin_name, exc) for check_id in ids]
        return results

    def remedies(self, facts, settings, failing) -> list:
        """Every plugin's :class:`~provision.api.Remedy` for the node's failing checks, in load order;
        one naming no failing check is dropped (a plugin answers for its own checks)."""
        if not failing:
            return []
        ids = {c.id for c in failing}
        found = self.pm.hook.provision_remedies(facts=facts, settings=settings, failing=tuple(failing))
        return [r for part in reversed(found) for r in part or [] if r.check in ids]

    def kernel_modules(self, settings) -> list[str]:
        """The kernel modules every plugin needs loaded at boot for the node, each once, in load order."""
        names: list[str] = []
        for part in reversed(self.pm.hook.provision_kernel_modules(settings=settings)):
            names += [n for n in part or [] if n not in names]
        return names

    @cached_property
    def _catalog_by_plugin(self) -> dict[str, list[str]]:
        hook = self.pm.hook.provision_check_catalog
        return {plugin: list(part) for plugin, part in _by_plugin(hook, hook())}

    def _subset_callers(self, name: str):
        """(plugin, a caller of hook ``name`` for that plugin alone), in load order: each implementation
        is still called through pluggy, its own wrappers included. Made once per hook."""
        if name in self._callers:
            return self._callers[name]
        impls = [i for i in getattr(self.pm.hook, name).get_hookimpls() if not (i.hookwrapper or i.wrapper)]
        others = [i.plugin for i in impls]  # wrappers stay: they run around each plugin's call
        callers = [(i.plugin_name, self.pm.subset_hook_caller(name, [p for p in others if p is not i.plugin]))
                   for i in impls]
        self._callers[name] = callers
        return callers

    def virt_decision(self, facts, settings):
        """The first decision, in pluggy's order, with the plugin that made it. Each implementation is
        called through pluggy (a subset caller per plugin), so wrappers and tracing still run."""
        from dataclasses import replace

        for plugin_name, caller in reversed(self._subset_callers("provision_virt_decision")):  # pluggy's order
            decision = caller(facts=facts, settings=settings)
            if decision is not None:
                return replace(decision, plugin=plugin_name)
        return None

    @cached_property
    def settings_model(self):
        """The pydantic model of the ``provision`` variable, from every plugin's part."""
        from provision.settings import CORE_SETTINGS, build_settings_model

        hook = self.pm.hook.provision_settings_schema
        parts = [("provision (core)", CORE_SETTINGS), *_by_plugin(hook, hook())]
        owner: dict[str, str] = {}
        for plugin, part in parts:
            for path in part:
                if path.endswith("[]"):
                    continue  # list entries tagged by type: several plugins add to one list
                clash = next((p for p in owner if p == path or p.startswith(path + ".") or path.startswith(p + ".")), None)
                if clash:
                    raise PluginError(f"settings field {path!r} of {plugin} clashes with {clash!r} of {owner[clash]}")
                owner[path] = plugin
        return build_settings_model([part for _, part in parts])

    def validate_settings(self, settings) -> list[tuple[tuple, str]]:
        return _in_load_order(self.pm.hook.provision_validate_settings(settings=settings))

    @cached_property
    def template_paths(self) -> tuple[str, ...]:
        return tuple(_in_load_order(self.pm.hook.provision_template_paths()))

    def render(self, ctx):
        """(plugin name, files) for each plugin that renders, in load order; each called through pluggy
        (a legal implementation that takes fewer arguments works, and wrappers run)."""
        for plugin_name, caller in self._subset_callers("provision_render"):
            yield plugin_name, [f for part in caller(ctx=ctx) for f in part or []]

    @cached_property
    def libvirt_kinds(self) -> dict:
        """Every kind of libvirt object, by name, in the order apply defines them: the built-in ones,
        then the plugins' (:func:`~provision.hookspecs.provision_libvirt_kinds`); a kind described
        twice is an input error naming both."""
        from provision.api import BUILTIN_KINDS
        from provision.errors import InputError

        kinds = {k.name: ("provision (core)", k) for k in BUILTIN_KINDS}
        for plugin_name, caller in self._subset_callers("provision_libvirt_kinds"):
            for kind in [k for part in caller() for k in part or []]:
                if kind.name in kinds:
                    raise InputError(f"libvirt kind {kind.name!r} is described by both {kinds[kind.name][0]} and {plugin_name}")
                kinds[kind.name] = (plugin_name, kind)
        return {name: kind for name, (_, kind) in kinds.items()}

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
    """The hooks for this process's environment (cached per value of the three variables)."""
    return _hooks_for(os.environ.get(AUTOLOAD_OFF_ENV, ""), os.environ.get(EXTRA_PLUGINS_ENV, ""),
                      os.environ.get(DISABLE_ENV, ""))


@cache
def _hooks_for(autoload_off: str, extra: str, disabled: str) -> Hooks:
    return Hooks(make_plugin_manager())
