"""One manifest document (kind, name, spec, protect, ignore_changes) and its address.

``Document`` validates its ``spec`` with the model of its ``kind`` in the same pass as the
envelope, so a single ``model_validate`` reports every problem of a document at once. Source
positions are not stored here (see ``ManifestSet.location``): a Document is pure desired state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from reconciler.kinds import MANIFEST_KINDS, ManifestKind, address_of, credential_address
from reconciler.lean import LeanModel

from .agent import AgentSpec
from .deployment import DeploymentSpec
from .environment import EnvironmentSpec
from .fields import ResourceName, SpecModel, fail
from .memory_store import MemoryStoreSpec
from .skill import SkillSpec
from .vault import CredentialSpec, VaultSpec

SPEC_MODELS: dict[str, type[SpecModel]] = {
    "Agent": AgentSpec,
    "Environment": EnvironmentSpec,
    "Vault": VaultSpec,
    "Deployment": DeploymentSpec,
    "MemoryStore": MemoryStoreSpec,
    "Skill": SkillSpec,
}
Spec = AgentSpec | EnvironmentSpec | VaultSpec | DeploymentSpec | MemoryStoreSpec | SkillSpec


@dataclass(frozen=True)
class _KindTagged:
    """A raw spec carried with its document's kind, so the right spec model validates it."""

    kind: str
    value: Any


def _untag(value: Any) -> Any:
    return value.value if isinstance(value, _KindTagged) else value


def _spec_kind(value: Any) -> str | None:
    if isinstance(value, _KindTagged):
        return value.kind
    for kind, model in SPEC_MODELS.items():
        if type(value) is model:
            return kind
    return None


AnySpec = Annotated[
    Annotated[AgentSpec, BeforeValidator(_untag), Tag("Agent")]
    | Annotated[EnvironmentSpec, BeforeValidator(_untag), Tag("Environment")]
    | Annotated[VaultSpec, BeforeValidator(_untag), Tag("Vault")]
    | Annotated[DeploymentSpec, BeforeValidator(_untag), Tag("Deployment")]
    | Annotated[MemoryStoreSpec, BeforeValidator(_untag), Tag("MemoryStore")]
    | Annotated[SkillSpec, BeforeValidator(_untag), Tag("Skill")],
    Discriminator(
        _spec_kind,
        custom_error_type="spec_without_kind",
        custom_error_message="spec cannot be checked until kind is valid",
    ),
]


SKILL_IGNORES_NOTHING = (
    "a Skill has nothing ignore_changes can leave alone: a change of its files (source) is a "
    "new version, and display_name is fixed when it is created; remove ignore_changes"
)


#: spec fields that are never compared, so ignore_changes would leave nothing alone there
NEVER_COMPARED: dict[str, dict[str, str]] = {
    "MemoryStore": {
        "memories": "a store's memories are seeds, each written once where no memory is and "
        "never compared afterwards, so ignore_changes has nothing to leave alone there; to "
        "have a seed not written, leave it out of memories",
    },
    "Deployment": {
        "rollout": "a deployment's rollout is never sent to the provider nor compared, so "
        "ignore_changes has nothing to leave alone there (the checks gate pin moves "
        "whatever it says); remove the checks to stop gating, or pass `apply --skip-checks` "
        "once",
    },
}


def moved_from_itself(name: str) -> str:
    """The error of a ``moved_from`` that names the document's own ``name``."""
    return (
        f"moved_from names this document's own name '{name}'; give the old name, or remove "
        "moved_from"
    )


def ignore_changes_problems(kind: str, paths: Iterable[object]) -> list[tuple[int, str]]:
    """``(index, message)`` of every ``ignore_changes`` entry that names no spec field.

    Example: ``ignore_changes_problems("Agent", ["metdata.owner", "system"]) ==
    [(0, "'metdata' is not a field of the Agent spec; did you mean 'metadata'?")]``.
    """
    fields = list(SPEC_MODELS[kind].model_fields)
    problems: list[tuple[int, str]] = []
    for index, path in enumerate(paths):
        if not isinstance(path, str):
            continue  # the type error says it
        segments = path.split(".")
        if not path or not all(segments):
            problems.append(
                (index, "ignore_changes entries are dotted spec paths such as metadata.owner")
            )
            continue
        head = segments[0].split("[", 1)[0]
        if kind == "Skill":  # uploaded, never updated: no diff for a path to leave out
            problems.append((index, SKILL_IGNORES_NOTHING))
            continue
        never = NEVER_COMPARED.get(kind, {}).get(head)
        if never is not None:
            problems.append((index, never))
            continue
        if head == "spec" and len(segments) > 1:
            problems.append(
                (index, f"write ignore_changes paths relative to spec: '{path[5:]}', not '{path}'")
            )
            continue
        if head not in fields:
            close = get_close_matches(head, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (fields: {', '.join(fields)})"
            problems.append((index, f"'{head}' is not a field of the {kind} spec{hint}"))
            continue
        indexed = any(s.isdigit() for s in segments[1:]) and head != "metadata"
        into = None if indexed else _list_on_the_way(kind, [head.split("[")[0], *segments[1:]])
        if into is not None and "[" not in path:
            problems.append(
                (
                    index,
                    f"'{path[:80]}' goes into the list {into}; ignore_changes leaves alone a "
                    f"field ({into}) or a key of a mapping (metadata.owner), not what is inside "
                    "a list",
                )
            )
        elif "[" in path or "]" in path or indexed:
            # the diff leaves alone mapping keys only: a list item's path matched nothing,
            # and plan diffed (and apply wrote) what the user meant to leave alone
            problems.append(
                (
                    index,
                    f"'{path[:80]}' names an item of a list; ignore_changes leaves alone a "
                    "field (tools) or a key of a mapping (metadata.owner), not one list item",
                )
            )
    return problems


def _list_on_the_way(kind: str, segments: list[str]) -> str | None:
    """The dotted prefix of ``segments`` that is a list in the kind's spec, when the path
    goes on past it (the diff leaves alone mapping keys only); None otherwise."""
    root = _spec_schema(kind)
    nodes: list[Any] = [root]
    for depth, segment in enumerate(segments):
        alternatives = _alternatives(root, nodes)
        if _is_list(alternatives):
            return ".".join(segments[:depth])
        nodes = _below(alternatives, segment)
        if not nodes:
            return None  # free-form, or a key the schema does not know: nothing to say
    return None


#: a segment of a path that ignore_changes accepts: no brackets, not a list index
_SEGMENT = r"(?![0-9]+(?:\.|$))[^.\[\]]+"
#: any further segments (where ``_list_on_the_way`` has nothing to say)
_ANY_REST = rf"(?:\.{_SEGMENT})*"
#: past this depth the pattern accepts any further segments (a schema may refer to itself)
_PATTERN_DEPTH = 8


def ignore_changes_pattern(kind: str) -> str:
    """``ignore_changes_problems`` as a JSON Schema pattern, for editors: a dotted path whose
    first segment is a field of the kind's spec, with no brackets, no list index (but as a
    metadata key) and nothing after a list (``tools``, never ``tools.configs``)."""
    root = _spec_schema(kind)
    never = NEVER_COMPARED.get(kind, {})
    fields = [f for f in SPEC_MODELS[kind].model_fields if f != "metadata" and f not in never]
    heads = [
        re.escape(f) + _rest_pattern(root, [root["properties"][f]], 1)
        for f in fields
        if f in root.get("properties", {})
    ]
    if "metadata" in SPEC_MODELS[kind].model_fields:
        heads.append(r"metadata(?:\.[^.\[\]]+)*")
    return "^(?:" + "|".join(heads) + ")$"


def _rest_pattern(root: dict[str, Any], nodes: list[Any], depth: int) -> str:
    """What may follow a segment whose schema is one of ``nodes``, as ``_list_on_the_way``
    walks it: nothing after a list, known keys and their own rests, any other key below a
    mapping of free keys, and anything at all where the schema knows no keys."""
    alternatives = _alternatives(root, nodes)
    if _is_list(alternatives):
        return ""
    names = sorted({name for node in alternatives for name in node.get("properties") or {}})
    others = _below(alternatives, None)
    if depth >= _PATTERN_DEPTH or (not names and not others):
        return _ANY_REST
    known = "|".join(re.escape(name) for name in names)
    other = rf"(?!(?:{known})(?:\.|$)){_SEGMENT}" if names else _SEGMENT
    heads = [(re.escape(name), _below(alternatives, name)) for name in names]
    branches = [
        head + (_rest_pattern(root, after, depth + 1) if after else _ANY_REST)
        for head, after in [*heads, (other, others)]
    ]
    return r"(?:\.(?:" + "|".join(branches) + "))?"


def _is_list(alternatives: list[dict[str, Any]]) -> bool:
    return any(node.get("type") == "array" or "items" in node for node in alternatives)


def _below(alternatives: list[dict[str, Any]], name: str | None) -> list[Any]:
    """The schemas a key ``name`` (None: a key none of them names) leads to in each of
    ``alternatives``: its property's, else that of the mapping's free keys."""
    after = []
    for node in alternatives:
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        if name is not None and name in properties:
            after.append(properties[name])
        elif isinstance(extra, dict):
            after.append(extra)
    return after


@functools.cache
def _spec_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = SPEC_MODELS[kind].model_json_schema()
    return schema


def _alternatives(root: dict[str, Any], nodes: list[Any]) -> list[dict[str, Any]]:
    """``nodes`` with ``$ref`` resolved and ``anyOf`` / ``oneOf`` / ``allOf`` spread out."""
    out: list[dict[str, Any]] = []
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "$ref" in node:
            stack.append(root.get("$defs", {}).get(str(node["$ref"]).rsplit("/", 1)[-1]))
            continue
        spread = [n for key in ("anyOf", "oneOf", "allOf") for n in node.get(key, ())]
        if spread:
            stack.extend(spread)
            continue
        out.append(node)
    return out


class Document(LeanModel):
    """One manifest document: the desired state of one resource.

    Example::

        kind: Agent
        name: coder          # address agent.coder
        spec: {model: claude-sonnet-4-6}
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)

    kind: ManifestKind = Field(
        description="Agent | Environment | Vault | Deployment | MemoryStore | Skill."
    )
    name: ResourceName = Field(
        description="Unique per kind; 1-64 lowercase letters, digits, '-', '_'. "
        "The address is KIND.NAME, e.g. agent.coder."
    )
    spec: AnySpec = Field(description="The provider's create fields, snake_case as on the wire.")
    protect: bool = Field(default=False, description="true = never archive or delete it.")
    ignore_changes: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="Spec paths plan must not diff, e.g. metadata.owner or system.",
    )
    moved_from: ResourceName | None = Field(
        default=None,
        description="The name this document had before (same kind): plan moves the lockfile "
        "entry and the remote object to the new address (renamed in place, never archived "
        "and created again). Harmless once the move is applied; remove it when convenient.",
    )

    @model_validator(mode="before")
    @classmethod
    def _tag_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "spec" in data:
            kind = data.get("kind")
            if isinstance(kind, str) and kind in SPEC_MODELS:
                return {**data, "spec": _KindTagged(kind, _untag(data["spec"]))}
        return data

    @model_validator(mode="after")
    def _check_ignore_changes(self) -> Document:
        # the loader reports every bad entry with its place (ignore_changes_problems); a
        # library caller validating one document gets the first
        for index, message in ignore_changes_problems(self.kind, self.ignore_changes):
            fail(message, "ignore_changes", index)
        return self

    @model_validator(mode="after")
    def _not_moved_from_itself(self) -> Document:
        if self.moved_from == self.name:
            fail(moved_from_itself(self.name), "moved_from")
        return self

    @property
    def moved_from_address(self) -> str | None:
        """The address this document moved from (``agent.coder``), or None."""
        if self.moved_from is None:
            return None
        return address_of(MANIFEST_KINDS[self.kind], self.moved_from)

    @property
    def address(self) -> str:
        """``agent.coder``, ``environment.python-data``, ``vault.github``, ``deployment.x``."""
        return address_of(MANIFEST_KINDS[self.kind], self.name)

    @property
    def remote_name(self) -> str:
        """The name sent to the provider: spec.name / spec.display_name, else the document name."""
        spec = self.spec
        remote = spec.display_name if isinstance(spec, VaultSpec | SkillSpec) else spec.name
        return remote or self.name

    def credentials(self) -> list[tuple[str, CredentialSpec]]:
        """``(address, spec)`` of each credential declared by a Vault document."""
        if not isinstance(self.spec, VaultSpec):
            return []
        return [(credential_address(self.name, c.name), c) for c in self.spec.credentials]
