"""Field types shared by every spec model: the base class, names, metadata, URLs, unions.

Validators here raise ``PydanticCustomError("manifest", message, {"at": (...)})``: the
message is a complete sentence for the user, and ``at`` is an optional sub-path below the
validated value, so a model-level rule can still point at the exact key (see ``fail``).
Nothing here reads files or the environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from reconciler.kinds import KIND_INFO, MAX_METADATA_KEYS, NAME_PATTERN, NAME_RE, TAG_KEYS
from reconciler.lean import LeanModel

#: The provider allows 16 metadata pairs; the ownership tags (``kinds.TAG_KEYS``) take three.
MAX_USER_METADATA_KEYS = MAX_METADATA_KEYS - len(TAG_KEYS)
MAX_METADATA_KEY_LEN = 64
MAX_METADATA_VALUE_LEN = 512

_NAME_RULE = "use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit"


def fail(message: str, *at: str | int, point: str = "value") -> NoReturn:
    """Raise a validation error whose message is shown to the user as is.

    Args:
        message: a sentence that says what is wrong and what to do.
        *at: a path below the value being validated (e.g. ``"mcp_servers", 0``) to point at.
        point: ``"value"`` to point at the value, ``"key"`` to point at its key.
    """
    raise PydanticCustomError("manifest", message, {"at": tuple(at), "point": point})


def fail_each(problems: Iterable[tuple[str, tuple[str | int, ...]]]) -> None:
    """Raise one validation error that stands for every ``(message, at)`` problem found, so that
    a list with several mistakes (two names repeated, say) says them all in one run: the
    loader spreads the ``more`` of its context into one error each (``messages.spread``).
    Returns when there are no problems."""
    found = list(problems)
    if found:
        (message, at), more = found[0], tuple((m, tuple(a)) for m, a in found[1:])
        raise PydanticCustomError(
            "manifest", message, {"at": tuple(at), "point": "value", "more": more}
        )


class SpecModel(LeanModel):
    """Base of every manifest model: strict types, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        hide_input_in_errors=True,  # inputs may be inline secrets; never print them
    )


def repeats(keys: Iterable[str | None]) -> Iterator[int]:
    """The index of every key that an earlier one already is: where a list that must name each
    thing once names it again (``None``: an entry the rule does not apply to).

    Example:
        >>> list(repeats(["a", "b", None, "a", None]))
        [3]
    """
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in seen:
            yield index
        seen.add(key)


def checked_by(check: Callable[[str], str | None]) -> AfterValidator:
    """A validator that fails with the problem ``check`` finds in a string, if it finds one."""

    def validate(value: str) -> str:
        problem = check(value)
        if problem:
            fail(problem)
        return value

    return AfterValidator(validate)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        kind, _, name = value.partition(".")
        if kind in KIND_INFO and NAME_RE.match(name):  # `agent.coder` where `coder` belongs
            fail(f"invalid name '{value[:80]}': write the name alone ('{name}'), not an address")
        fail(f"invalid name '{value[:80]}': {_NAME_RULE}")
    return value


ResourceName = Annotated[
    str,
    AfterValidator(_check_name),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
"""A manifest-local name: document names, credential names and references to them."""


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if key in TAG_KEYS:
            fail(
                f"metadata key '{key}' is reserved: the reconciler sets it to record ownership; "
                "remove it",
                key,
                point="key",
            )
        if not key:
            fail("metadata keys must not be empty", key, point="key")
        if len(key) > MAX_METADATA_KEY_LEN:
            fail(
                f"metadata key is {len(key)} characters long; the limit is {MAX_METADATA_KEY_LEN}",
                key,
                point="key",
            )
    for key, item in value.items():
        if len(item) > MAX_METADATA_VALUE_LEN:
            fail(
                f"metadata value is {len(item)} characters long; the limit is "
                f"{MAX_METADATA_VALUE_LEN}",
                key,
            )
    if len(value) > MAX_USER_METADATA_KEYS:
        fail(
            f"too many metadata keys: {len(value)}; manifests may set at most "
            f"{MAX_USER_METADATA_KEYS} (the provider allows 16 and the reconciler reserves "
            f"{', '.join(TAG_KEYS)})"
        )
    return value


Metadata = Annotated[
    dict[str, str],
    AfterValidator(_check_metadata),
    Field(
        description=(
            f"Key/value labels (at most {MAX_USER_METADATA_KEYS} keys, key <= 64 chars, "
            "value <= 512 chars, values are strings). The keys "
            + ", ".join(TAG_KEYS)
            + " are reserved for the reconciler."
        ),
        json_schema_extra={
            "maxProperties": MAX_USER_METADATA_KEYS,
            "propertyNames": {
                "maxLength": MAX_METADATA_KEY_LEN,
                "minLength": 1,
                "not": {"enum": list(TAG_KEYS)},
            },
            "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LEN},
        },
    ),
]


#: an absolute http(s) URL with a host, its scheme in any case as RFC 3986 has it, and no
#: user or password before the host (also the JSON Schema's pattern, which has no flags)
_HTTP_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@]+(?:[/?#]\S*)?$"
_USERINFO = re.compile(r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]*@")


def refuse_userinfo(value: str) -> str:
    """Refuse a URL with a user or password before its host (never repeating it: what is
    before the ``@`` is often a token, which plan would print)."""
    if _USERINFO.match(value):
        fail(
            "a URL must not carry a user or password (user:secret@host): plan would show "
            "it; write the URL without it and give the secret in its own field "
            "({from_env: VAR} or {from_file: PATH}): a credential's token, a repository's "
            "authorization_token"
        )
    return value


#: a URL ``refuse_userinfo`` takes, as its JSON Schema says it
NO_USERINFO_SCHEMA = {"not": {"pattern": _USERINFO.pattern}}


def _check_http_url(value: str) -> str:
    refuse_userinfo(value)
    if not re.match(_HTTP_URL, value):
        fail("expected an absolute http(s) URL such as https://mcp.example.com/mcp")
    return value


#: the provider takes URLs of at most 2048 characters (MCP servers, credentials, token endpoints)
MAX_URL = 2048
HttpUrl = Annotated[
    str,
    Field(max_length=MAX_URL),
    AfterValidator(_check_http_url),
    Field(json_schema_extra={"pattern": _HTTP_URL}),
]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def int_to_str(value: Any) -> Any:
    """Let ``version: 1`` or ``amount: 2500`` stand for the wire's strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def int_or_str_schema(string: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a field ``int_to_str`` reads: the wire's string (``string``), or
    the integer it stands for, so editors accept what ``validate`` does."""
    integer: dict[str, Any] = {"type": "integer"}
    if "pattern" in string:  # digits only: a whole number, never negative
        integer["minimum"] = 0
    return {"anyOf": [{"type": "string", **string}, integer]}


def _string_or_object(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict | BaseModel):
        return "object"
    return None


def string_or_object(string_type: Any, object_type: Any, expected: str) -> Any:
    """A union of a string form and a mapping form, with one clear error for anything else.

    Args:
        string_type: the type of the string form (``str`` or a ``Literal``).
        object_type: the model of the mapping form.
        expected: what to say when the value is neither, e.g. "a model id or a mapping".
    """
    return Annotated[
        Annotated[string_type, Tag("string")] | Annotated[object_type, Tag("object")],
        Discriminator(
            _string_or_object,
            custom_error_type="manifest",
            custom_error_message=f"expected {expected}",
        ),
    ]
