"""The ``spec`` of a Deployment manifest: what to run, where, with which vaults, and when.

Unlike the wire (``agent`` id, ``environment_id``, ``vault_ids``), a manifest refers to other
manifests by name; the engine resolves names to ids at apply time. ``agent`` is normalised to
an ``AgentPin`` (``version=None`` follows the latest). Shapes follow ``provider-wire.md`` §9.
"""

from __future__ import annotations

import re
import zoneinfo
from difflib import get_close_matches
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    SerializationInfo,
    Tag,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from reconciler.kinds import NAME_PATTERN

from .fields import (
    NO_USERINFO_SCHEMA,
    Metadata,
    NonEmptyStr,
    ResourceName,
    SpecModel,
    checked_by,
    fail,
    fail_each,
    int_or_str_schema,
    int_to_str,
    refuse_userinfo,
    repeats,
)
from .rollout import Rollout
from .secret import SecretRef
from .textfile import FILE_FORM_SCHEMA

MAX_INITIAL_EVENTS = 50
MAX_VAULTS = 50
MAX_RESOURCES = 500


# --------------------------------------------------------------------------- agent pin


class AgentPin(SpecModel):
    """The agent a deployment runs: a manifest name, and a version (None = follow the latest).

    Written in a manifest as ``coder`` or ``{ref: coder, version: 5}`` or
    ``{ref: coder, version: latest}``.
    """

    ref: ResourceName = Field(description="Name of an Agent manifest.")
    version: int | None = Field(default=None, description="Pinned version (>= 1); None = latest.")

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"ref": data}
        if not isinstance(data, dict):
            return data
        version = data.get("version")
        if version == "latest":
            return {**data, "version": None}
        if isinstance(version, bool) or (version is not None and not isinstance(version, int)):
            fail("version must be a positive integer or 'latest'", "version")
        if isinstance(version, int) and version < 1:
            fail(
                f"agent version pin must be >= 1 (got {version}); versions start at 1, or use "
                "'latest' to follow the newest",
                "version",
            )
        return data

    @property
    def follows_latest(self) -> bool:
        return self.version is None

    @field_serializer("version")
    def _as_written(self, version: int | None, info: SerializationInfo) -> int | str | None:
        # Policies read the document as written (``context={"as_written": True}``): a pin
        # written ``latest`` is None here, which a rule would read as null and so never
        # tell from a pin (``spec.agent.version != 'latest'`` held for it).
        if version is None and isinstance(info.context, dict) and info.context.get("as_written"):
            return "latest"
        return version


_AGENT_PIN_SCHEMA = {
    "description": "Agent manifest name (follows the latest version), or "
    "{ref: NAME, version: N | latest}.",
    "oneOf": [
        {"type": "string", "pattern": NAME_PATTERN},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["ref"],
            "properties": {
                "ref": {"type": "string", "description": "Name of an Agent manifest."},
                "version": {
                    "description": "Version to pin (>= 1), or latest (default).",
                    "oneOf": [
                        {"type": "integer", "minimum": 1},
                        {"type": "string", "const": "latest"},
                        {"type": "null"},
                    ],
                },
            },
        },
    ],
}


# --------------------------------------------------------------------------- initial events


class TextBlock(SpecModel):
    type: Literal["text"]
    text: Annotated[str, WithJsonSchema({"anyOf": [{"type": "string"}, FILE_FORM_SCHEMA]})] = Field(
        description="The text, or {from_file: PATH} (relative to this manifest file)."
    )


class OtherContentBlock(SpecModel):
    """An image, document or redacted block, passed to the provider as written."""

    model_config = SpecModel.model_config | {"extra": "allow"}

    type: Literal["image", "document", "redacted"]


ContentBlock = Annotated[TextBlock | OtherContentBlock, Field(discriminator="type")]


class UserMessageEvent(SpecModel):
    """The first user message of each session."""

    type: Literal["user.message"]
    content: Annotated[list[ContentBlock], Field(min_length=1)]


class TextRubric(SpecModel):
    type: Literal["text"]
    content: NonEmptyStr


class FileRubric(SpecModel):
    type: Literal["file"]
    file_id: NonEmptyStr


class DefineOutcomeEvent(SpecModel):
    """An outcome the session works toward, graded against a rubric."""

    type: Literal["user.define_outcome"]
    description: NonEmptyStr
    rubric: Annotated[TextRubric | FileRubric, Field(discriminator="type")]
    max_iterations: Annotated[int, Field(ge=1, le=20)] | None = None


class SystemMessageEvent(SpecModel):
    type: Literal["system.message"]
    content: Annotated[list[TextBlock], Field(min_length=1)]


InitialEvent = Annotated[
    UserMessageEvent | DefineOutcomeEvent | SystemMessageEvent, Field(discriminator="type")
]


# --------------------------------------------------------------------------- resources


class BranchCheckout(SpecModel):
    type: Literal["branch"]
    name: NonEmptyStr


class CommitCheckout(SpecModel):
    type: Literal["commit"]
    sha: NonEmptyStr


class GitHubRepositoryResource(SpecModel):
    """A GitHub repository cloned into each session's container."""

    type: Literal["github_repository"]
    url: Annotated[
        NonEmptyStr, AfterValidator(refuse_userinfo), Field(json_schema_extra=NO_USERINFO_SCHEMA)
    ]
    authorization_token: SecretRef | None = None
    checkout: Annotated[BranchCheckout | CommitCheckout, Field(discriminator="type")] | None = None
    mount_path: str | None = None


class FileResource(SpecModel):
    type: Literal["file"]
    file_id: NonEmptyStr
    mount_path: str | None = None


class MemoryStoreResource(SpecModel):
    type: Literal["memory_store"]
    memory_store_id: NonEmptyStr
    access: Literal["read_write", "read_only"] | None = None
    instructions: str | None = None


class MemoryStoreMount(SpecModel):
    """A MemoryStore manifest mounted by name; resolved to its id at apply."""

    memory_store: ResourceName = Field(description="Name of a MemoryStore manifest.")
    access: Literal["read_write", "read_only"] | None = Field(
        default=None, description="Default read_write."
    )
    instructions: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="How the agent should use this store (at most 4,096 chars)."
    )


def _resource_tag(value: Any) -> str | None:
    if isinstance(value, MemoryStoreMount):
        return "mount"
    if isinstance(value, BaseModel):
        return str(getattr(value, "type", "")) or None
    if isinstance(value, dict):
        # a mount, or one misspelt (`memory_stor:`), whose errors then say "did you mean"
        if "type" not in value and any(
            isinstance(k, str) and get_close_matches(k.lower(), ["memory_store"], n=1)
            for k in value
        ):
            return "mount"
        kind = value.get("type")
        return kind if isinstance(kind, str) else None
    return None


Resource = Annotated[
    Annotated[MemoryStoreMount, Tag("mount")]
    | Annotated[GitHubRepositoryResource, Tag("github_repository")]
    | Annotated[FileResource, Tag("file")]
    | Annotated[MemoryStoreResource, Tag("memory_store")],
    Discriminator(
        _resource_tag,
        custom_error_type="manifest",
        custom_error_message="a resource is {memory_store: NAME, access?, instructions?} or a "
        "wire resource with type github_repository, file or memory_store",
    ),
]


# --------------------------------------------------------------------------- schedule, budget

_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_CRON_ITEM = re.compile(r"^(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$")


def check_cron(expression: str) -> str | None:
    """Return why a 5-field POSIX cron expression is invalid, or None if it is valid."""
    if expression.strip().startswith("@"):
        return "cron macros like @daily are not supported; write the 5 fields, e.g. '0 0 * * *'"
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"cron expression must have 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    for text, (label, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.match(item)
            if not match:
                return (
                    f"invalid {label} field '{text}': use numbers, '*', ranges a-b, steps /n "
                    "and lists a,b (no names, L, W, # or ?)"
                )
            _, start, end, step = match.groups()
            for number in (start, end):
                if number is not None and not low <= int(number) <= high:
                    return f"{label} value {number} is out of range {low}-{high}"
            if start is not None and end is not None and int(start) > int(end):
                return f"{label} range {start}-{end} is backwards"
            if step is not None and int(step) < 1:
                return f"{label} step must be at least 1"
    return None


@lru_cache(maxsize=1)
def _time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _check_time_zone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
        return None
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError (odd paths), OSError
        message = f"unknown time zone '{name[:80]}'; use an IANA name such as Europe/Berlin or UTC"
        close = get_close_matches(name, _time_zones(), n=1)
        return message + (f" (did you mean '{close[0]}'?)" if close else "")


class Schedule(SpecModel):
    """Fire automatically: a 5-field cron expression in an IANA time zone."""

    type: Literal["cron"]
    expression: Annotated[str, checked_by(check_cron)] = Field(
        description="5-field POSIX cron, e.g. '0 3 * * 1-5'.",
        # five fields, as check_cron counts them (no @daily macros); their values it checks
        json_schema_extra={"pattern": r"^\s*[^\s@]+(\s+[^\s@]+){4}\s*$"},
    )
    timezone: Annotated[str, checked_by(_check_time_zone)] = Field(
        description="IANA time zone, e.g. Europe/Berlin."
    )


class Money(SpecModel):
    """An amount in minor units (cents) as a string: "2500" is $25.00."""

    amount: Annotated[
        str,
        BeforeValidator(int_to_str),
        WithJsonSchema(int_or_str_schema({"pattern": "^[0-9]+$"})),
    ]
    currency: Literal["USD"]

    @field_validator("amount")
    @classmethod
    def _minor_units(cls, value: str) -> str:
        if not value.isascii() or not value.isdigit():
            fail('amount is a whole number of cents written as a string, e.g. "2500" for $25.00')
        return value


class Budget(SpecModel):
    """A spend ceiling copied onto every session of the deployment."""

    type: Literal["limit"]
    max_list_cost: Money


# --------------------------------------------------------------------------- the spec


def _by_name(field: str, example: str) -> BeforeValidator:
    """A reference written as the agent's ``{ref: NAME}`` is answered with this field's form."""

    def check(value: Any) -> Any:
        if isinstance(value, dict) and "ref" in value:
            fail(
                f"{field} names its manifest directly ({example}); only agent takes "
                "{ref: NAME, version}"
            )
        return value

    return BeforeValidator(check)


class DeploymentSpec(SpecModel):
    """Desired state of a deployment: an agent pin, an environment, vaults and a trigger."""

    name: Annotated[NonEmptyStr, Field(max_length=256)] | None = Field(
        default=None, description="Remote name; defaults to the document name."
    )
    description: Annotated[str, Field(max_length=2048)] | None = None
    agent: Annotated[AgentPin, WithJsonSchema(_AGENT_PIN_SCHEMA)]
    environment: Annotated[ResourceName, _by_name("environment", "environment: python-data")] = (
        Field(description="Name of an Environment manifest.")
    )
    vaults: Annotated[
        list[Annotated[ResourceName, _by_name("vaults", "vaults: [github]")]],
        Field(max_length=MAX_VAULTS),
    ] = Field(
        default_factory=list,
        description="Names of Vault manifests.",
        json_schema_extra={"uniqueItems": True},  # as _unique_vaults checks
    )
    initial_events: Annotated[
        list[InitialEvent], Field(min_length=1, max_length=MAX_INITIAL_EVENTS)
    ] = Field(description="1-50 events sent to every new session (user.message, ...).")
    resources: Annotated[list[Resource], Field(max_length=MAX_RESOURCES)] | None = None
    schedule: Schedule | None = None
    budget: Budget | None = None
    metadata: Metadata | None = None
    #: gated rollouts: never sent to the provider (``engine.desired`` takes it apart)
    rollout: Rollout | None = None

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("vaults")
    @classmethod
    def _unique_vaults(cls, vaults: list[str]) -> list[str]:
        fail_each((f"vault '{vaults[i]}' is listed twice", (i,)) for i in repeats(vaults))
        return vaults

    @field_validator("resources")
    @classmethod
    def _unique_memory_stores(cls, resources: list[Resource] | None) -> list[Resource] | None:
        # the provider refuses a store mounted twice (one mount, one access), at apply
        seen: set[str] = set()
        problems: list[tuple[str, tuple[str | int, ...]]] = []
        for index, item in enumerate(resources or ()):
            if isinstance(item, MemoryStoreMount):
                key, shown, field = f"name:{item.memory_store}", item.memory_store, "memory_store"
            elif isinstance(item, MemoryStoreResource):
                key, shown, field = item.memory_store_id, item.memory_store_id, "memory_store_id"
            else:
                continue
            if key in seen:
                problems.append(
                    (
                        (
                            f"memory store '{shown}' is mounted twice; mount it once (with "
                            "the access it needs)"
                        ),
                        (index, field),
                    )
                )
            seen.add(key)
        fail_each(problems)
        return resources

    def references(self) -> list[tuple[str, str, tuple[str | int, ...]]]:
        """``(kind, name, spec path)`` of every manifest this deployment refers to."""
        refs: list[tuple[str, str, tuple[str | int, ...]]] = [
            ("Agent", self.agent.ref, ("agent", "ref")),
            ("Environment", self.environment, ("environment",)),
        ]
        refs += [("Vault", vault, ("vaults", i)) for i, vault in enumerate(self.vaults)]
        refs += [
            ("MemoryStore", r.memory_store, ("resources", i, "memory_store"))
            for i, r in enumerate(self.resources or ())
            if isinstance(r, MemoryStoreMount)
        ]
        return refs
