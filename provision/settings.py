"""The ``provision`` settings schema, assembled from what each plugin contributes.

A plugin's ``provision_settings_schema`` returns ``{dotted path: (type, default)}``
for plain fields (``"hypervisor"``, ``"network.bridges"``) and ``{"name[]": Model}``
for entries of a list tagged by their ``type`` field (``"storage[]": NfsPool``).
Every model forbids unknown keys, so typos are errors.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

VIRT_TYPES = ("auto", "kvm", "qemu")
# the core's own part: the settings the core reads itself (virt_type for the decision, render and guests;
# remedies for apply: false keeps apply from installing, loading or starting anything on the node)
CORE_SETTINGS: dict[str, Any] = {"virt_type": (typing.Literal[VIRT_TYPES], "auto"), "remedies": (bool, True)}


class StrictModel(BaseModel):
    """Base for settings models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: fast start-up


def build_settings_model(parts: list[dict[str, Any]]) -> type[BaseModel]:
    """One pydantic model for the whole ``provision`` variable."""
    tree: dict[str, Any] = {}
    tagged: dict[str, list[type[BaseModel]]] = {}
    for part in parts:
        for path, spec in part.items():
            if path.endswith("[]"):
                tagged.setdefault(path[:-2], []).append(spec)
                continue
            node = tree
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = spec
    for name, models in tagged.items():
        union: Any = models[0] if len(models) == 1 else Union[tuple(models)]
        entry: Any = Annotated[union, Field(discriminator="type")] if len(models) > 1 else union
        tree[name] = (list[entry], [])  # built at run time from the plugins' parts
    model = _model("ProvisionSettings", tree)
    # built now, once: forked validation workers inherit the validator instead of each building it
    model.model_rebuild()
    return model


def _model(name: str, tree: dict[str, Any]) -> type[BaseModel]:
    fields = {}
    for key, spec in tree.items():
        if isinstance(spec, dict):
            sub = _model(f"{name}_{key}", spec)
            fields[key] = (sub, Field(default_factory=sub))
        else:
            fields[key] = spec
    return create_model(name, __base__=StrictModel, **fields)  # type: ignore[call-overload]  # fields built at run time


def validate_settings(model: type[BaseModel], data: Any) -> tuple[dict[str, Any] | None, list[tuple[tuple, str]]]:
    """(settings with defaults, []) or (None, [(path, message), ...])."""
    try:
        return model.model_validate(data or {}).model_dump(mode="json"), []
    except ValidationError as exc:
        return None, list(dict.fromkeys(explain(model, err) for err in exc.errors()))  # union members may say it twice


def explain(model: type[BaseModel], err: Any) -> tuple[tuple, str]:
    """A pydantic error as (path without union tags, a message a user can act on). The value is
    quoted back, except in a field that holds or names a secret (a key pasted into key_file)."""
    from provision.secrets import points_at_secret

    path = _clean_loc(model, err["loc"])
    kind, got = err["type"], err.get("input")
    hidden = points_at_secret(path)
    beside = not hidden and _beside_secret(model, err["loc"])
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        return path, f"must be one of {', '.join(choices)}" + ("" if hidden or beside else f" (got {got!r})")
    if kind == "extra_forbidden":
        known = _known_keys(model, path[:-1])
        hint = f"; known keys: {', '.join(known)}" if known else ""
        return path, f"unknown key{hint}"
    if kind == "union_tag_invalid":
        tags = sorted(re.findall(r"'([^']*)'", err["ctx"]["expected_tags"]))
        return (*path, "type"), f"must be one of {', '.join(tags)} (got {err['ctx']['tag']!r})"
    if kind == "union_tag_not_found":
        return (*path, "type"), "required"
    if kind == "missing":
        return path, "required"
    message = err["msg"]
    if not message[1:2].isupper():  # "UUID input ..." stays as it is
        message = message[0].lower() + message[1:]
    message = message.replace("Value error, ", "").replace("value error, ", "")
    if hidden or beside:
        message = re.sub(r",[^,]*found `.*$", "", message)  # pydantic quotes the character it stopped at
        message += (" (the value is not shown: this field names a secret or its file)" if hidden else
                    " (the value is not shown: this field sits beside a secret, where a key may be pasted by mistake)")
    elif got is not None and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return path, message


def _beside_secret(model: type[BaseModel], loc: tuple) -> bool:
    """Whether the field at ``loc`` sits in a mapping that holds a secret or names its file (an RBD pool's
    ``name`` beside its ``key_file``), or is itself a mapping that does (an iSCSI pool's ``chap``): a key
    pasted into the wrong field of it is not quoted back."""
    from provision.secrets import points_at_secret

    current: list[type[BaseModel]] = [model]
    owners: list[type[BaseModel]] = []
    for part in loc:
        if isinstance(part, int):
            continue
        following = _step(current, part)
        if following is None:
            current = [m for m in current if _tag_of(m) == part] or current
            continue
        owners, current = [m for m in current if part in m.model_fields], following
    if owners == [model]:
        return False  # a top-level setting: the whole model is not "beside" every secret in it
    return any(points_at_secret((name,)) for m in (*owners, *current) for name in m.model_fields)


def _annotation_models(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (list[...], Annotated[Union[...]], ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _annotation_models(arg)]


def _step(models: list[type[BaseModel]], name: str) -> list[type[BaseModel]] | None:
    """The models of field ``name`` in whichever of ``models`` has it, or None."""
    match = [m for m in models if name in m.model_fields]
    return _annotation_models(match[0].model_fields[name].annotation) if match else None


def _clean_loc(model: type[BaseModel], loc: tuple) -> tuple:
    """Drop the discriminator tags pydantic puts in locations of tagged-union entries."""
    path: list = []
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            continue
        following = _step(current, part)
        tagged = [m for m in current if _tag_of(m) == part] if following is None else []
        if tagged:
            current = tagged
            continue
        if following is None and any(c in part for c in "[](=,"):
            continue  # pydantic's label of a union member (lax-or-strict[...]): no key of the inventory's
        path.append(part)
        current = following or []
    return tuple(path)


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if len(args) == 1 else None


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    current: list[type[BaseModel]] = [model]
    for part in path:
        if isinstance(part, int):
            continue
        following = _step(current, part)
        if following is None:
            return []
        current = following
    return sorted({k for m in current for k, f in m.model_fields.items() if not f.exclude})  # not moved keys
