"""No lookups from inventories: an inventory value is data, and Ansible's ``lookup()``, ``query()`` and
``q()`` run plugins (``pipe`` runs a shell command on the controller, ``file`` reads any file). Every
lookup this process's templating asks for is refused and recorded, unless the operator allowed that
lookup by name (``--allow-lookup NAME`` or ``PROVISION_ALLOW_LOOKUPS=env,file``).

The guard sits where Ansible's templating loads a lookup plugin (``lookup_loader.get``), so the
plugin is never loaded, let alone run; it holds for every way a template can reach a lookup (the
``lookup``, ``query`` and ``q`` globals, nested in filters, through a variable that refers to another,
and the ``constructed`` plugin's expressions). Inventory scripts, inventory plugins and vault password
scripts are code the operator chose to run and still run, as in Ansible.

Jinja's ``{% include %}``, ``{% import %}``, ``{% from %}`` and ``{% extends %}`` read a file (from the
working folder) as ``lookup('file')`` would: the loader Ansible gives its templates is replaced by one
that refuses and records each, with no way to allow them.
"""

from __future__ import annotations

import os

ALLOW_ENV = "PROVISION_ALLOW_LOOKUPS"
BUILTIN = "ansible.builtin."

_refused: list[str] = []


class FilesRefused(Exception):
    """A template asked to read a file (include, import, extends)."""


class LookupRefused(Exception):
    """A lookup an inventory asked for and provision refused to load."""

    def __init__(self, name: str):
        super().__init__(f"lookup {name!r} refused")
        self.name = name


def allowed() -> frozenset[str]:
    """The lookups the operator allowed, by name (``env``, ``ansible.builtin.env``, ``ns.coll.name``)."""
    names = {n.strip() for n in os.environ.get(ALLOW_ENV, "").split(",") if n.strip()}
    return frozenset(names | {BUILTIN + n for n in names if "." not in n})


def install() -> None:
    """Put the guard in front of Ansible's lookup loader, and a loader that reads no file behind its
    templates (once per process; forked workers inherit both)."""
    import jinja2
    from ansible._internal._templating import _jinja_bits
    from ansible.plugins.loader import lookup_loader

    class NoFiles(jinja2.BaseLoader):
        """What Ansible's templates load files through (include, import, extends): nothing."""

        def __init__(self, *args, **kwargs) -> None:
            pass

        def get_source(self, environment, template):
            _refused.append(f"{{% include/import %}} of {template!r}")
            raise jinja2.TemplateNotFound(template)

    _jinja_bits.FileSystemLoader = NoFiles  # the name AnsibleEnvironment builds its loader from

    if getattr(lookup_loader.get, "provision_guard", False):
        return
    original = lookup_loader.get

    def get(name, *args, **kwargs):
        wanted = str(name)
        if wanted not in allowed() and BUILTIN + wanted not in allowed():
            _refused.append(f"lookup {wanted!r}")
            raise LookupRefused(wanted)
        return original(name, *args, **kwargs)

    get.provision_guard = True  # type: ignore[attr-defined]
    lookup_loader.get = get


def take_refused() -> list[str]:
    """The lookups refused since the last call, in order, each once; the record is cleared."""
    names = list(dict.fromkeys(_refused))
    _refused.clear()
    return names


def refusal(names: list[str]) -> str:
    """Why the value was refused, and how an operator who means it can allow a lookup."""
    calls = ", ".join(names)
    lookups = [n.split("'")[1] for n in names if n.startswith("lookup '")]
    if not lookups:
        return (f"{calls} refused: inventory values are data, and a template that reads a file is a lookup of it; "
                "nothing was read")
    first = lookups[0].removeprefix(BUILTIN)
    return (f"{calls} refused: inventory values are data, and lookups run plugins on this machine (pipe runs "
            f"commands); nothing was run. To allow one by name: --allow-lookup {first} or {ALLOW_ENV}={first}")
