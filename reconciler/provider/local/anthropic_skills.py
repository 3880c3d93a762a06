"""The Anthropic skills every workspace sees: ``xlsx``, ``pptx``, ``docx`` and ``pdf``.

Read-only objects of the skills API with ``source: {type: anthropic}`` (the SDK's
``BetaSkillSource``), addressed by their short ids (``GET /v1/skills/xlsx``), each with one
version whose id is a date (``20251013``): what agents' ``{type: anthropic, skill_id,
version?}`` references resolve to. They are data here, not rows of the store: no upload,
delete or new version reaches them. This module holds the catalogue and its lookups; the
routes serve it (``routes_skills``) and agents check references against it (``defaults``).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError, not_found

#: the version every Anthropic skill is at (and the only one the local provider knows)
LATEST = "20251013"
_CREATED_AT = "2025-10-13T00:00:00Z"
#: a list cursor's ``seq`` for the first Anthropic skill: above any stored row's, so a list
#: of every source pages through the custom skills first, then these
FIRST_SEQ = 2**61

_DESCRIPTIONS = {
    "docx": "Create, edit and analyse Word documents (.docx): tracked changes, comments, "
    "formatting.",
    "pdf": "Read, create, merge, split and fill PDF documents, and extract their text and tables.",
    "pptx": "Create, edit and analyse PowerPoint presentations (.pptx): layouts, slides, "
    "speaker notes.",
    "xlsx": "Create, edit and analyse Excel spreadsheets (.xlsx): formulas, formatting, charts.",
}
IDS = tuple(sorted(_DESCRIPTIONS))


def skill(skill_id: str) -> dict[str, Any] | None:
    """The skill object of an Anthropic skill id, or None."""
    if skill_id not in _DESCRIPTIONS:
        return None
    return {
        "type": "skill",
        "id": skill_id,
        "display_name": skill_id,
        "source": {"type": "anthropic"},
        "latest_version_id": LATEST,
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
    }


def version(skill_id: str, version_id: str) -> dict[str, Any] | None:
    """The skill version object of ``version_id`` (or ``latest``) of an Anthropic skill, or
    None when either is unknown."""
    if skill_id not in _DESCRIPTIONS or version_id not in (LATEST, "latest"):
        return None
    return {
        "type": "skill_version",
        "id": LATEST,
        "skill_id": skill_id,
        "name": skill_id,
        "description": _DESCRIPTIONS[skill_id],
        "created_at": _CREATED_AT,
    }


def skill_md(skill_id: str) -> bytes:
    """The ``SKILL.md`` a download of the skill holds (its frontmatter; the instructions
    themselves are Anthropic's and not part of the local provider)."""
    # quoted: the descriptions hold ': ', which a plain YAML scalar cannot
    description = json.dumps(_DESCRIPTIONS[skill_id])
    return f"---\nname: {skill_id}\ndescription: {description}\n---\n".encode()


def rows() -> list[tuple[int, dict[str, Any]]]:
    """``(seq, skill)`` of every Anthropic skill, in list order."""
    return [(FIRST_SEQ + i, skill(skill_id) or {}) for i, skill_id in enumerate(IDS)]


def resolve(skill_id: str, version_id: str | None) -> str:
    """The version an agent's ``{type: anthropic, skill_id, version?}`` reference pins.

    Raises:
        ApiError: 404 for a skill id or a version Anthropic does not publish.
    """
    if skill_id not in _DESCRIPTIONS:
        raise ApiError(
            404,
            f"Anthropic skill {skill_id!r} not found; Anthropic skills are "
            f"{', '.join(IDS)} (a skill you uploaded is {{type: custom, skill_id: skill_...}})",
        )
    if version(skill_id, version_id or "latest") is None:
        raise not_found("skill version", f"{version_id} of Anthropic skill {skill_id}")
    return LATEST


def read_only(skill_id: str) -> ApiError:
    """The refusal of a write to an Anthropic skill."""
    return ApiError(
        403, f"skill {skill_id} is an Anthropic skill: it is read-only (upload your own instead)"
    )
