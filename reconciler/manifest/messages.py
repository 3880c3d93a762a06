"""Turn pydantic validation errors into user sentences that point at a place in the data.

Pydantic's ``loc`` mixes data keys with union tags (``tools, 0, custom, name``). ``explain``
walks the raw data along ``loc`` to find the real data path, picks whether the key or the
value should be pointed at, and writes a message that says what is wrong and what to do -
with a "did you mean" hint for unknown keys and values. Messages never echo input values
except short enum-like strings, so an inline secret cannot leak through an error.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel, Discriminator, Tag
from pydantic_core import ErrorDetails

from .yamlsource import DataPath


@dataclass(frozen=True)
class Explained:
    """An error placed in the data: where to point, the path to show, and the message."""

    path: DataPath  # the existing data path to locate
    point: str  # "key" | "value"
    shown_path: DataPath  # the path shown to the user (may name a missing field)
    message: str


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str | None:
    """The closest candidate to ``word`` (case-insensitive), if any is close enough."""
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    close = get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def format_path(path: DataPath) -> str:
    """``("spec", "tools", 0, "name")`` -> ``spec.tools[0].name``."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif elem.replace("-", "").replace("_", "").isalnum():
            out += f".{elem}" if out else elem
        else:
            out += f'["{elem}"]'
    return out


def yaml_type(value: Any) -> str:
    """How the user wrote a value, in YAML words."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value of another type"


def data_path(data: Any, loc: tuple[str | int, ...]) -> DataPath:
    """Follow ``loc`` through the raw data, skipping union tags that are not data keys."""
    path: list[str | int] = []
    current = data
    for i, elem in enumerate(loc):
        if isinstance(current, dict):
            found = isinstance(elem, str) and elem in current
            # a tag that is also a key of the data (a skill's ``ref``) leads to a scalar
            # while the next part of ``loc`` is a key beside it: it was the tag
            if (
                found
                and i + 1 < len(loc)
                and not isinstance(current[elem], dict | list)
                and loc[i + 1] in current
            ):
                found = False
        elif isinstance(current, list):
            found = isinstance(elem, int) and 0 <= elem < len(current)
        else:
            found = False
        if found:
            current = current[elem]
            path.append(elem)
    return tuple(path)


# --------------------------------------------------------------------------- field names


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (returning its metadata) and ``Optional``."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            metadata.extend(tp.__metadata__)
            tp = tp.__origin__
            continue
        if _is_union(tp):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp, metadata


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _member_for_tag(tp: Any, tag: str | int) -> Any | None:
    for member in typing.get_args(tp):
        base, metadata = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == tag for m in metadata):
            return member
        if isinstance(base, type) and issubclass(base, BaseModel):
            if base.__name__ == tag:
                return member
            for field in base.model_fields.values():
                if typing.get_origin(field.annotation) is typing.Literal and tag in typing.get_args(
                    field.annotation
                ):
                    return member
    return None


#: the name of a model's class attribute mapping a field to the key the loader also takes
#: in its place (``{"content": "from_file"}``: a memory seed's file form, read before
#: validation): unknown keys are matched against it, and a missing field names it
ALTERNATIVES = "alternative_keys"


def _alternatives(root: type[BaseModel], loc: tuple[str | int, ...]) -> dict[str, str]:
    model = _model_at(root, loc)
    return dict(getattr(model, ALTERNATIVES, {})) if model is not None else {}


def fields_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str] | None:
    """The keys the model found at ``loc`` below ``root`` takes (its fields, and the keys
    the loader reads in place of one), when it can be told."""
    model = _model_at(root, loc)
    if model is None:
        return None
    return [*model.model_fields, *getattr(model, ALTERNATIVES, {}).values()]


def _model_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model found at ``loc`` below ``root``, when it can be told."""
    tp: Any = root
    for elem in loc:
        tp, metadata = _unwrap(tp)
        if _is_union(tp) or any(isinstance(m, Discriminator) for m in metadata):
            member = _member_for_tag(tp, elem)
            if member is None:
                return None
            tp = member
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(elem))
            if field is None:
                return None
            tp = (
                typing.Annotated[field.annotation, *field.metadata]
                if field.metadata
                else field.annotation
            )
            continue
        origin = typing.get_origin(tp)
        if origin in (list, tuple) and typing.get_args(tp):
            tp = typing.get_args(tp)[0]
        elif origin is dict and typing.get_args(tp):
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp, _ = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return None


# --------------------------------------------------------------------------- messages


def _expected_list(text: str) -> list[str]:
    return [
        part.strip().strip("'") for part in text.replace(" or ", ",").split(",") if part.strip()
    ]


def _short(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 64 and value.isprintable():
        return value
    return None


def _quote_hint(value: Any) -> str:
    if isinstance(value, bool | int | float):
        return "; put it in quotes to make it a string"
    return ""


def _hidden_key(loc: tuple[Any, ...], allowed: list[str] | None) -> bool:
    """Whether the unknown key at ``loc`` is left unsaid: under a credential's ``auth`` a
    token pasted without ``token:`` reads as a key. A mistyped field name (one with a close
    match) is no secret, and is named with its correction."""
    return "auth" in loc[:-1] and not (allowed and did_you_mean(str(loc[-1]), allowed))


def _message(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    loc = tuple(error["loc"])
    if kind == "manifest":
        return str(error.get("msg", ""))
    if kind == "missing":
        other = _alternatives(root, loc[:-1]).get(str(loc[-1]))
        return f"missing required field '{loc[-1]}'" + (f" (or {other})" if other else "")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = fields_at(root, loc[:-1])
        if _hidden_key(loc, allowed):
            fields = f" (allowed: {', '.join(allowed)})" if allowed else ""
            return (
                "unknown field, not shown: a key under auth may be a secret pasted without "
                f"its field name{fields}"
            )
        message = f"unknown field '{key}'"
        hidden = [c for c in key if not c.isprintable()]
        if hidden:  # a zero-width space or a BOM pasted in: the message would look right
            escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in key)
            message = (
                f"unknown field '{escaped}' (it holds an invisible character, "
                f"U+{ord(hidden[0]):04X}: delete it)"
            )
        if allowed:
            close = did_you_mean(key, allowed)
            if close:
                return message + f"; did you mean '{close}'?"
            return message + f" (allowed: {', '.join(allowed)})"
        return message
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        shown = _short(value)
        message = f"must be one of {expected}" + (
            f", not '{shown}'" if shown is not None else f"; got {yaml_type(value)}"
        )
        close = did_you_mean(shown, _expected_list(expected)) if shown else None
        return message + (f" (did you mean '{close}'?)" if close else "")
    if kind == "union_tag_invalid":
        field = str(ctx.get("discriminator", "type")).strip("'")
        tag = str(ctx.get("tag", ""))
        expected = str(ctx.get("expected_tags", ""))
        message = f"unknown {field} '{tag[:64]}'; expected one of {expected}"
        close = did_you_mean(tag, _expected_list(expected))
        return message + (f" (did you mean '{close}'?)" if close else "")
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "type")).strip("'")
        return f"missing required field '{field}'"
    simple = {
        "string_type": "expected a string",
        "int_type": "expected an integer",
        "int_from_float": "expected an integer",
        "float_type": "expected a number",
        "bool_type": "expected true or false",
        "list_type": "expected a list",
        "tuple_type": "expected a list",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping",
        "model_attributes_type": "expected a mapping",
    }
    if kind in simple:
        return f"{simple[kind]}, got {yaml_type(value)}" + (
            _quote_hint(value) if kind == "string_type" else ""
        )
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must be at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        got = f" (got {len(value)})" if isinstance(value, str) else ""
        return f"must be at most {ctx.get('max_length')} characters{got}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    bounds = {
        "greater_than_equal": ("ge", ">="),
        "greater_than": ("gt", ">"),
        "less_than_equal": ("le", "<="),
        "less_than": ("lt", "<"),
    }
    if kind in bounds:
        key, op = bounds[kind]
        return f"must be {op} {ctx.get(key)}"
    if kind == "string_pattern_mismatch":
        return f"does not match the required pattern {ctx.get('pattern')}"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg[:1].lower() + msg[1:]


def spread(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """The errors with each one that stands for several problems of a list (``fields.fail_each``)
    made one error per problem, in the order the rule found them."""
    out: list[ErrorDetails] = []
    for error in errors:
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        more = ctx.pop("more", ()) if error["type"] == "manifest" else ()
        if not more:
            out.append(error)
            continue
        for index, (message, at) in enumerate(((error["msg"], ctx.get("at", ())), *more)):
            one = error.copy()
            one["ctx"] = {**ctx, "at": tuple(at)}
            if index:
                one["msg"] = message
            out.append(one)
    return out


def explain(error: ErrorDetails, data: Any, root: type[BaseModel]) -> Explained:
    """Place one pydantic error in the raw data and phrase it for the user.

    Args:
        error: one item of ``ValidationError.errors()``.
        data: the raw document data that was validated.
        root: the model validated (``Document``), used for "did you mean" field names.
    """
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    message = _message(error, root)
    if kind == "missing":
        path = data_path(data, loc[:-1])
        return Explained(path, "key", path + (loc[-1],), message)
    path = data_path(data, loc)
    if kind == "extra_forbidden":
        # a key that may be a secret is placed, never shown, not even in the path
        hidden = _hidden_key(loc, fields_at(root, loc[:-1]))
        return Explained(path, "key", path[:-1] if hidden else path, message)
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "type")).strip("'")
        typo = _misspelt_key(value_at(data, path), field)
        if typo is not None:  # `tpye: cloud`: the unknown key is the problem, and says so
            hint = f"unknown field '{typo}'; did you mean '{field}'?"
            return Explained(path + (typo,), "key", path + (typo,), hint)
        return Explained(path, "key", path + (field,), message)
    if kind == "union_tag_invalid":
        field = str(ctx.get("discriminator", "type")).strip("'")
        tagged = data_path(data, loc + (field,))
        if tagged == path + (field,):
            return Explained(tagged, "value", tagged, message)
    if kind == "manifest":
        at = tuple(ctx.get("at") or ())
        located = data_path(data, loc + at) if at else path
        # keep the full path the rule named, even where the data has no such key yet
        shown = path + at if at else path
        point = str(ctx.get("point", "value"))
        if located != path + at or isinstance(value_at(data, located), dict | list):
            point = "key"
        return Explained(located, point, shown, message)
    point = "key" if isinstance(value_at(data, path), dict | list) else "value"
    return Explained(path, point, path, message)


def _misspelt_key(holder: Any, field: str) -> str | None:
    """The key of ``holder`` that reads as a misspelling of the missing ``field``, if any."""
    if not isinstance(holder, dict):
        return None
    keys = [k for k in holder if isinstance(k, str) and k != field]
    return next((k for k in keys if did_you_mean(k, [field]) is not None), None)


def value_at(data: Any, path: DataPath) -> Any:
    """The raw value at an existing data path."""
    for elem in path:
        data = data[elem]
    return data
