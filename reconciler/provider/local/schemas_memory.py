"""Request bodies of memory stores and memories, and the path rules of a memory.

Same conventions as ``schemas``: validation and OpenAPI documentation only, unknown fields
rejected, handlers read ``model_dump(exclude_unset=True)``. The limits are the SDK 2.10.0
docstrings': a store name 1-255 characters without control characters, a description up to
1,024, metadata 16 pairs (key 1-64, value <= 512); a memory path starts with ``/``, has 1-20
segments (none empty, ``.`` or ``..``), no control, format or line/paragraph separator
characters, is NFC and at most 1,024 bytes; content at most 102,400 UTF-8 bytes.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Generic, Literal

from pydantic import Field, StringConstraints, field_validator

from .errors import bad_request
from .schemas import Metadata, MetadataPatch, MetadataT
from .schemas_nested import Body

MAX_CONTENT_BYTES = 102_400
MAX_PATH_BYTES = 1024
MAX_SEGMENTS = 20
MAX_DESCRIPTION = 1024
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
StoreName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]


def _no_control(value: str | None) -> str | None:
    if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain control characters")
    return value


class _MemoryStoreFields(Body, Generic[MetadataT]):
    """A memory store's fields, as create and update send them (see ``schemas.MetadataT``)."""

    name: StoreName | None = None
    description: Description | None = None
    metadata: MetadataT | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return _no_control(value)


class MemoryStoreCreate(_MemoryStoreFields[Metadata]):
    name: StoreName


class MemoryStoreUpdate(_MemoryStoreFields[MetadataPatch]):
    pass


class Precondition(Body):
    type: Literal["content_sha256"]
    content_sha256: Sha256 | None = None


class MemoryCreate(Body):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    # ``Required[Optional[str]]`` in the SDK: sent, but possibly null (checked in the route)
    content: Annotated[str, StringConstraints(max_length=4 * MAX_CONTENT_BYTES)] | None = Field()


class MemoryUpdate(Body):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    content: Annotated[str, StringConstraints(max_length=4 * MAX_CONTENT_BYTES)] | None = None
    precondition: Precondition | None = None


def check_path(path: str, what: str = "path") -> str:
    """A memory path as the SDK defines one.

    Raises:
        ApiError: 400 naming the rule the path breaks.
    """
    if not path.startswith("/"):
        raise bad_request(f"{what} must start with '/'")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise bad_request(f"{what} must be at most {MAX_PATH_BYTES} bytes")
    segments = path[1:].split("/")
    if len(segments) > MAX_SEGMENTS:
        raise bad_request(f"{what} must have at most {MAX_SEGMENTS} segments")
    if any(s in ("", ".", "..") for s in segments):
        raise bad_request(f"{what} must not have empty, '.' or '..' segments")
    for char in path:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs") or char in "\u2028\u2029":
            raise bad_request(f"{what} must not contain control or format characters")
    if unicodedata.normalize("NFC", path) != path:
        raise bad_request(f"{what} must be in Unicode Normalization Form C")
    return path


def check_prefix(prefix: str) -> str:
    """A ``path_prefix`` of a memory list: ``/`` or a path ending in ``/``.

    Raises:
        ApiError: 400 naming the rule the prefix breaks.
    """
    if prefix == "/":
        return prefix
    if not prefix.endswith("/"):
        raise bad_request("path_prefix must end with '/'")
    check_path(prefix[:-1], "path_prefix")
    return prefix


def check_content(content: str | None) -> str:
    """Memory content: a string of at most 100 kB in UTF-8.

    Raises:
        ApiError: 400 when null, not encodable as UTF-8 or too large.
    """
    if content is None:
        raise bad_request('content is required; pass "" for an empty memory')
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 bytes, so no content_sha256
        raise bad_request("content must be valid Unicode text (no lone surrogates)") from None
    if size > MAX_CONTENT_BYTES:
        raise bad_request(f"content must be at most {MAX_CONTENT_BYTES} bytes (100 kB) of UTF-8")
    return content
