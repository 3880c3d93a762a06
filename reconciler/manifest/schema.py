"""JSON Schema (draft 2020-12) of one manifest document, for editors and CI linters.

The schema describes what a user writes: ``kind`` picks the spec schema through
``if``/``then`` so yaml-language-server completes and documents the spec fields of each kind.
It is generated from the same pydantic models that validate, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from reconciler.kinds import MANIFEST_KINDS, NAME_PATTERN

from .document import SPEC_MODELS, ignore_changes_pattern
from .policy import PolicySpec

#: documents that are no remote resource (checked, never planned)
POLICY_KIND = "Policy"

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


#: the spec models the schema describes: one per kind, and the policy's
_MODELS: tuple[type[BaseModel], ...] = (*SPEC_MODELS.values(), PolicySpec)


@lru_cache(maxsize=1)
def _build() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "validation") for model in _MODELS],
        ref_template="#/$defs/{model}",
    )
    defs: dict[str, Any] = top.get("$defs", {})
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "reconciler manifest document",
        "description": "One document of a reconciler manifest file: the desired state of one "
        f"{', '.join(MANIFEST_KINDS)}, or a {POLICY_KIND} that checks them. Files may hold "
        "many documents separated by ---.",
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "name", "spec"],
        "properties": {
            "kind": {
                "enum": [*MANIFEST_KINDS, POLICY_KIND],
                "description": "What this document declares (a Policy is no remote resource: "
                "its CEL rules check the other documents).",
            },
            "name": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": "Unique per kind; the address is KIND.NAME (e.g. agent.coder). "
                "1-64 lowercase letters, digits, '-' or '_'. Also the remote name unless the "
                "spec sets name (display_name for vaults).",
            },
            "spec": {
                "type": "object",
                "description": "The provider's create fields, snake_case as on the wire.",
                "$ref": f"#/$defs/{_NO_INTERPOLATION}",
            },
            "protect": {
                "type": "boolean",
                "default": False,
                "description": "true = never archive or delete this resource.",
            },
            "ignore_changes": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "default": [],
                "description": "Spec paths plan must not diff, e.g. metadata.owner or system.",
            },
            "moved_from": {
                # an empty `moved_from:` (null) means no move, as validate reads it
                "anyOf": [{"type": "string", "pattern": NAME_PATTERN}, {"type": "null"}],
                "description": "The name this document had before (same kind): the plan moves "
                "the remote object and its lockfile entry to the new address in place, instead "
                "of archiving one and creating another.",
            },
        },
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {
                    "properties": {
                        "spec": {"$ref": f"#/$defs/{model.__name__}"},
                        # a Skill has nothing to leave alone: validate refuses any entry
                        "ignore_changes": {"maxItems": 0}
                        if kind == "Skill"
                        else {"items": {"pattern": ignore_changes_pattern(kind)}},
                    }
                },
            }
            for kind, model in SPEC_MODELS.items()
        ]
        + [
            {
                "if": {"properties": {"kind": {"const": POLICY_KIND}}, "required": ["kind"]},
                "then": {
                    "properties": {
                        "spec": {"$ref": f"#/$defs/{PolicySpec.__name__}"},
                        "protect": False,
                        "ignore_changes": False,
                        "moved_from": False,
                    }
                },
            }
        ],
        "$defs": {**defs, _NO_INTERPOLATION: _no_interpolation()},
    }


#: the ``$defs`` entry that refuses ``${`` in every string value below it, as the loader does
_NO_INTERPOLATION = "NoInterpolation"


def _no_interpolation() -> dict[str, Any]:
    # the loader's rule (``(?<!\$)\$\{``) without a lookbehind, which not every editor's
    # regex engine has: `${` at the start or after anything but another `$`
    return {
        "description": "${VAR} interpolation is not supported; use {from_env: VAR} for "
        "secrets (write $${ for a literal ${).",
        "not": {"type": "string", "pattern": r"(?:^|[^$])\$\{"},
        "additionalProperties": {"$ref": f"#/$defs/{_NO_INTERPOLATION}"},
        "items": {"$ref": f"#/$defs/{_NO_INTERPOLATION}"},
    }


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document (a fresh copy the caller may change).

    Returns:
        A draft 2020-12 schema; ``reconciler schema`` writes it for
        ``# yaml-language-server: $schema=...`` comments.
    """
    return copy.deepcopy(_build())
