"""Field-level differences as ``FieldChange`` values; the only module that sees deepdiff.

Input is two normalised objects (see ``normalize``); output is a sorted tuple of changes with
dotted paths (``model.id``, ``tools[1]``, ``metadata[owner]`` is written ``metadata.owner``).
"""

from __future__ import annotations

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


def diff_objects(live: dict[str, Any], desired: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Changes that turn ``live`` into ``desired``.

    Example: ``diff_objects({"a": 1}, {"a": 2}) ==
    (FieldChange(op="change", path="a", old=1, new=2),)``.
    """
    if live == desired:
        return ()
    # Imported here: deepdiff brings numpy (~0.2 s), and most resources take the fast path
    # above; ``validate``, ``--help`` and no-change plans never pay for it.
    from deepdiff import DeepDiff

    tree = DeepDiff(live, desired, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    changes: list[FieldChange] = []
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


def changed_fields(changes: tuple[FieldChange, ...]) -> list[str]:
    """Top-level field names touched by ``changes``, in order of first appearance."""
    seen: list[str] = []
    for c in changes:
        top = c.path.split(".")[0].split("[")[0]
        if top not in seen:
            seen.append(top)
    return seen
