"""The shared Jinja2 environment: StrictUndefined, XML autoescaped, templates from every plugin."""

from __future__ import annotations

from functools import cache
from pathlib import Path

DICT_MEMBERS = frozenset(dir(dict))


@cache
def environment(extra_paths: tuple[str, ...] = ()):
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

    import provision_templates

    class FlatGlobals(Environment):
        def make_globals(self, d):
            # a plain dict, where Jinja keeps a ChainMap so later changes to the environment's
            # globals show in loaded templates: ours never change, and the ChainMap, copied into
            # every render's context, was a quarter of the time of rendering a fleet
            return {**self.globals, **(d or {})}

        def getattr(self, obj, attribute):
            # ``settings.network`` on a dict: Jinja tries the attribute first and takes the item on
            # its AttributeError, an exception per lookup; the item straight away gives the same
            # value for every name that is not a dict method
            if type(obj) is dict and attribute not in DICT_MEMBERS:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    builtin = str(Path(provision_templates.__file__).parent)
    env = FlatGlobals(
        loader=ChoiceLoader([FileSystemLoader(builtin), *(FileSystemLoader(p) for p in extra_paths)]),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("xml.j2", "html.j2"), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a run: no stat per render
    )
    env.filters["systemd"] = systemd_value
    return env


def systemd_value(value) -> str:
    """A value for a systemd unit setting: '%' starts a specifier there (%h, %n), so it is written '%%'."""
    return str(value).replace("%", "%%")


@cache
def template(extra_paths: tuple[str, ...], name: str):
    """A compiled template, looked up once: Jinja's own lookup (a locked LRU cache, a loader key)
    costs, per call, a tenth of rendering one of ours."""
    return environment(extra_paths).get_template(name)
