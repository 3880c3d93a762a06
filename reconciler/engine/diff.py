"""Field-level differences as ``FieldChange`` values; the only module that sees deepdiff.

Input is two normalised objects (see ``normalize``); output is a sorted tuple of changes with
dotted paths (``model.id``, ``tools[1]``, ``metadata[owner]`` is written ``metadata.owner``).
Lists the caller names as unordered are compared by value (scalars: ``+ allowed_hosts:
"pypi.org"``) or by a key field (``mcp_servers[github].url``), never by index.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.engine.model import FieldChange
from reconciler.engine.normalize import matched_indexes

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


class _ItemKey(str):
    """The key of an item of a keyed list (``mcp_servers[github]``), kept apart from field
    names so the path shows it in brackets."""


def _dotted(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int | _ItemKey):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _missing(value: Any) -> Any:
    # deepdiff marks the absent side with a sentinel class instance
    return None if type(value).__name__ == "NotPresent" else value


def diff_objects(
    live: dict[str, Any],
    desired: dict[str, Any],
    unordered: tuple[str, ...] = (),
    keyed: Mapping[str, str] | None = None,
    reorderable: str | None = None,
) -> tuple[FieldChange, ...]:
    """Changes that turn ``live`` into ``desired``.

    Args:
        live: the normalised live object.
        desired: the normalised desired object.
        unordered: dotted paths of lists of scalars whose order means nothing (``*`` matches
            any key, e.g. ``config.packages.*``); where both sides hold such a list, each
            item added or removed is one change at the list's path, by value
            (``+ config.networking.allowed_hosts: "pypi.org"``), not a change at an index.
        keyed: dotted paths (``*`` also matches any list index) of lists of objects told
            apart by a key field, e.g. ``{"mcp_servers": "name"}``; where both sides hold
            such a list with unique keys, items are matched by key and paths read
            ``mcp_servers[github].url``.
        reorderable: a top-level field holding a list whose items are told apart by who
            they are (``normalize.REORDERABLE_LISTS``): items are matched by identity and
            read at the index the desired one has (``+ resources[0]`` for a mount added
            first, not every mount after it changed); a live item nothing desired matches
            reads after the desired ones.

    Example: ``diff_objects({"a": 1}, {"a": 2}) ==
    (FieldChange(op="change", path="a", old=1, new=2),)``.
    """
    if live == desired:
        return ()
    changes: list[FieldChange] = []
    if unordered or keyed or reorderable:
        live, desired = copy.deepcopy(live), copy.deepcopy(desired)
        if reorderable is not None:
            _index_by_match(live, desired, reorderable)
        for pattern, key in (keyed or {}).items():
            for where in list(_expand(tuple(pattern.split(".")), live)):
                _key_list(live, desired, where, key)
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
) -> Iterator[Path]:
    """Concrete paths matching ``patterns`` where both sides hold a list of scalars."""
    for pattern in patterns:
        for path in _expand(tuple(pattern.split(".")), live):
            a, b = _get(live, path), _get(desired, path)
            if _scalar_list(a) and _scalar_list(b):
                yield path


Path = tuple[str | int, ...]


def lists_at(pattern: str, obj: Any) -> Iterator[list[Any]]:
    """The lists in ``obj`` at the dotted ``pattern`` (``*``: any key or index), as the
    tables of ``normalize`` name them (``UNORDERED_LISTS``, ``KEYED_LISTS``)."""
    for path in _expand(tuple(pattern.split(".")), obj):
        found = _get(obj, path)
        if isinstance(found, list):
            yield found


def _expand(pattern: tuple[str, ...], obj: Any) -> Iterator[Path]:
    if not pattern:
        yield ()
        return
    head, rest = pattern[0], pattern[1:]
    keys: list[str | int]
    if isinstance(obj, dict):
        keys = sorted(obj) if head == "*" else [head] if head in obj else []
    elif isinstance(obj, list) and head == "*":
        keys = list(range(len(obj)))
    else:
        return
    for key in keys:
        for tail in _expand(rest, obj[key]):
            yield (key, *tail)


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        in_dict = isinstance(obj, dict) and key in obj
        in_list = isinstance(obj, list) and isinstance(key, int) and key < len(obj)
        if not (in_dict or in_list):
            return None
        obj = obj[key]
    return obj


def _key_list(live: Any, desired: Any, path: Path, key: str) -> None:
    """Turn the lists at ``path`` on both sides into ``{_ItemKey(item[key]): item}`` when
    every item has a distinct string key; else leave them to be compared by index."""
    sides = (_get(live, path), _get(desired, path))
    keyed: list[dict[_ItemKey, Any]] = []
    for items in sides:
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get(key), str) for i in items
        ):
            return
        by_key = {_ItemKey(i[key]): i for i in items}
        if len(by_key) != len(items):
            return
        keyed.append(by_key)
    for obj, value in zip((live, desired), keyed, strict=True):
        parent = _get(obj, path[:-1])
        parent[path[-1]] = value


def _index_by_match(live: dict[str, Any], desired: dict[str, Any], field: str) -> None:
    """Turn the lists at ``field`` into ``{_ItemKey(index): item}``: a desired item at its
    own index, a live one at the index of the desired item that matches it, or after the
    desired ones (``matched_indexes``)."""
    items, wanted = live.get(field), desired.get(field)
    if not isinstance(items, list) or not isinstance(wanted, list) or not items or not wanted:
        return
    at = matched_indexes(items, wanted)
    live[field] = {_ItemKey(str(at[i])): item for i, item in enumerate(items)}
    desired[field] = {_ItemKey(str(j)): item for j, item in enumerate(wanted)}


def _take(obj: dict[str, Any], path: Path) -> list[Any]:
    """Remove the list at ``path`` from ``obj`` (leaving an empty one) and return it."""
    parent: Any = _get(obj, path[:-1]) if len(path) > 1 else obj
    value: list[Any] = parent[path[-1]]
    parent[path[-1]] = []
    return value


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, str | int | float | bool) or v is None for v in value
    )


def _by_value(path: Path, old: list[Any], new: list[Any]) -> list[FieldChange]:
    dotted = _dotted(list(path))
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
