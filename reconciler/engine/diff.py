"""Field-level differences as ``FieldChange`` values; the only module that sees deepdiff.

Input is two normalised objects (see ``normalize``); output is a sorted tuple of changes with
dotted paths (``model.id``, ``tools[1]``, ``metadata[owner]`` is written ``metadata.owner``).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

from reconciler.engine.model import FieldChange

_OPS = {
    "values_changed": "change",
    "type_changes": "change",
    "dictionary_item_added": "add",
    "dictionary_item_removed": "remove",
    "iterable_item_added": "add",
    "iterable_item_removed": "remove",
    "attribute_added": "add",
    "attribute_removed": "remove",
    "set_item_added": "add",
    "set_item_removed": "remove",
}


def _dotted(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _missing(value: Any) -> Any:
    # deepdiff marks the absent side with a sentinel class instance
    return None if type(value).__name__ == "NotPresent" else value


def diff_objects(
    live: dict[str, Any], desired: dict[str, Any], unordered: tuple[str, ...] = ()
) -> tuple[FieldChange, ...]:
    """Changes that turn ``live`` into ``desired``.

    Args:
        live: the normalised live object.
        desired: the normalised desired object.
        unordered: dotted paths of lists of scalars whose order means nothing (``*`` matches
            any key, e.g. ``config.packages.*``); where both sides hold such a list, each
            item added or removed is one change at the list's path, by value
            (``+ config.networking.allowed_hosts: "pypi.org"``), not a change at an index.

    Example: ``diff_objects({"a": 1}, {"a": 2}) ==
    (FieldChange(op="change", path="a", old=1, new=2),)``.
    """
    if live == desired:
        return ()
    changes: list[FieldChange] = []
    if unordered:
        live, desired = copy.deepcopy(live), copy.deepcopy(desired)
        for where in _list_paths(unordered, live, desired):
            changes += _by_value(where, _take(live, where), _take(desired, where))
        if live == desired:
            return tuple(sorted(changes, key=lambda c: (c.path, c.op)))
    # Imported here: deepdiff brings numpy (~0.2 s), and most resources take the fast path
    # above; ``validate``, ``--help`` and no-change plans never pay for it.
    from deepdiff import DeepDiff

    tree = DeepDiff(live, desired, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    for report_type, items in tree.items():
        op = _OPS.get(report_type)
        if op is None:
            continue
        for item in items:
            path = _dotted(item.path(output_format="list"))
            old, new = _missing(item.t1), _missing(item.t2)
            if op == "add":
                old = None
            elif op == "remove":
                new = None
            changes.append(FieldChange(op=op, path=path, old=old, new=new))
    return tuple(sorted(changes, key=lambda c: (c.path, c.op)))


def _list_paths(
    patterns: tuple[str, ...], live: dict[str, Any], desired: dict[str, Any]
) -> Iterator[tuple[str, ...]]:
    """Concrete paths matching ``patterns`` where both sides hold a list of scalars."""
    for pattern in patterns:
        for path in _expand(tuple(pattern.split(".")), live):
            a, b = _get(live, path), _get(desired, path)
            if _scalar_list(a) and _scalar_list(b):
                yield path


def _expand(pattern: tuple[str, ...], obj: Any) -> Iterator[tuple[str, ...]]:
    if not pattern:
        yield ()
        return
    if not isinstance(obj, dict):
        return
    head, rest = pattern[0], pattern[1:]
    keys = sorted(obj) if head == "*" else [head] if head in obj else []
    for key in keys:
        for tail in _expand(rest, obj[key]):
            yield (key, *tail)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _take(obj: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    """Remove the list at ``path`` from ``obj`` (leaving an empty one) and return it."""
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    value: list[Any] = parent[path[-1]]
    parent[path[-1]] = []
    return value


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, str | int | float | bool) or v is None for v in value
    )


def _by_value(path: tuple[str, ...], old: list[Any], new: list[Any]) -> list[FieldChange]:
    dotted = ".".join(path)
    before, after = Counter(old), Counter(new)
    removed = sorted((before - after).elements(), key=str)
    added = sorted((after - before).elements(), key=str)
    return [FieldChange(op="remove", path=dotted, old=v) for v in removed] + [
        FieldChange(op="add", path=dotted, new=v) for v in added
    ]


def changed_fields(changes: tuple[FieldChange, ...]) -> list[str]:
    """Top-level field names touched by ``changes``, in order of first appearance."""
    seen: list[str] = []
    for c in changes:
        top = c.path.split(".")[0].split("[")[0]
        if top not in seen:
            seen.append(top)
    return seen
