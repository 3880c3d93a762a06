"""Plan files (``plan --out``, ``apply PLANFILE``): the file format, beside the lockfile.

A plan file is JSON: ``{"kind": "reconciler-plan", "plan": {...}, "binding": {...}}``. This
module writes and decodes that envelope; what the plan means (``engine.model.Plan``) and what
the binding binds (a digest of the manifests) are the application's (``app/planfile.py``).
No secret value is ever in a plan file.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.errors import PlanError
from reconciler.state.files import write_text_atomic
from reconciler.state.lockfile import position_at, position_of_deepest, position_of_path

PLAN_FILE_KIND = "reconciler-plan"


def write_plan_file(
    path: Path, plan: Mapping[str, Any], binding: Mapping[str, Any] | None = None
) -> None:
    """Write ``plan`` (its JSON form) and its ``binding`` atomically to ``path``."""
    data: dict[str, Any] = {"kind": PLAN_FILE_KIND, "plan": plan}
    if binding is not None:
        data["binding"] = binding
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def decode_plan_file(path: Path, raw: bytes) -> dict[str, Any]:
    """The envelope of a plan file: ``plan`` (unchecked) and ``binding``, if any.

    Raises:
        PlanError: ``raw`` is not a plan file written by ``plan --out``.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        # named by line and column, as the lockfile's errors are (the column in bytes)
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise PlanError(
            f"{path}:{line}:{column}: not a saved plan (not valid UTF-8: byte "
            f"0x{raw[err.start]:02x}); write it again with `reconciler plan --out {shlex.quote(str(path))}`"
        ) from None
    except json.JSONDecodeError as err:
        raise PlanError(
            f"{path}:{err.lineno}:{err.colno}: not a saved plan (not valid JSON: "
            f"{err.msg.removesuffix(' starting at')}); "
            f"write it again with `reconciler plan --out {shlex.quote(str(path))}`"
        ) from None
    except RecursionError:
        text = raw.decode("utf-8")
        raise PlanError(
            f"{path}{position_of_deepest(text)}: not a saved plan (JSON nested too deeply); "
            f"write it again with `reconciler plan --out {shlex.quote(str(path))}`"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != PLAN_FILE_KIND:
        text = raw.decode("utf-8")
        if not isinstance(data, dict):
            what = f"a JSON object was expected, found {type(data).__name__}"
            where = position_at(text, len(text) - len(text.lstrip()))
        elif "kind" not in data:
            what = f'no "kind": "{PLAN_FILE_KIND}"'
            where = position_at(text, len(text) - len(text.lstrip()))
        else:
            what = f'"kind" is {json.dumps(data["kind"])[:60]}, not "{PLAN_FILE_KIND}"'
            where = position_of_path(text, ("kind",))
        raise PlanError(
            f"{path}{where}: not a saved plan ({what}); write one with `reconciler plan --out`"
        )
    return data
