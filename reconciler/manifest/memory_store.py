"""The ``spec`` of a MemoryStore manifest: a store's create fields and its seed memories.

A memory store is a named directory of memories that sessions mount (provider-wire.md §15).
The manifest owns the store (name, description, metadata); the agents own its content. So
``memories:`` are seeds: each is written once, when the store is created, and never compared
or changed afterwards (a memory an agent rewrote is neither a change nor drift).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, field_validator

from .fields import Metadata, SpecModel, checked_by, fail, fail_each, repeats
from .textfile import FILE_FORM_SCHEMA, FROM_FILE

#: provider limits (the SDK's docstrings of memory_stores / memories)
MAX_NAME = 255
MAX_DESCRIPTION = 1024
MAX_MEMORY_BYTES = 102_400
MAX_PATH_BYTES = 1024
MAX_PATH_SEGMENTS = 20
#: seeds are written one request each at create time: keep a store's seed list small
MAX_SEEDS = 100


def memory_path_problem(path: str) -> str | None:
    """Why ``path`` is not a valid memory path, or None (the SDK's rules for memories)."""
    if not path.startswith("/"):
        return f"memory path '{path[:80]}' must start with '/', e.g. /notes/style.md"
    segments = path[1:].split("/")
    if len(segments) > MAX_PATH_SEGMENTS:
        return f"memory path has {len(segments)} segments; the limit is {MAX_PATH_SEGMENTS}"
    if any(segment in ("", ".", "..") for segment in segments):
        return f"memory path '{path[:80]}' has an empty, '.' or '..' segment"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"memory path is longer than {MAX_PATH_BYTES} bytes"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in path):
        return "memory path contains a control or format character"
    if unicodedata.normalize("NFC", path) != path:
        return "memory path must be in Unicode Normalization Form C"
    return None


#: the control characters (category Cc) a memory path or a store's name must not hold
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"

#: ``memory_path_problem``'s rules as far as a JSON Schema pattern can say them, for editors:
#: what a path must not contain (searched, so Python's ``$`` before a final newline is no gap)
_BAD_PATH = (
    rf"//|/\.\.?(?:/|$)|/$|(?:/[^/]*){{{MAX_PATH_SEGMENTS + 1}}}|[{_CONTROL}\u2028\u2029]"
)


def _seed_schema(schema: dict[str, Any]) -> None:
    """The file form the loader reads before validation: ``{path, from_file}``."""
    schema["properties"][FROM_FILE] = FILE_FORM_SCHEMA["properties"][FROM_FILE]
    schema["required"] = ["path"]
    schema["oneOf"] = [{"required": ["content"]}, {"required": [FROM_FILE]}]


class MemorySeed(SpecModel):
    """A memory written when the store is created: ``{path, content}``, or ``{path,
    from_file}`` (read at load by ``textfile``, relative to the manifest file)."""

    model_config = ConfigDict(json_schema_extra=_seed_schema)
    #: ``messages.ALTERNATIVES``: the file form, named in "did you mean" and missing-field
    #: messages (the loader has replaced it by ``content`` when it was spelt right)
    alternative_keys: ClassVar[dict[str, str]] = {"content": FROM_FILE}

    path: Annotated[str, checked_by(memory_path_problem)] = Field(
        description="Starts with '/', 1-20 segments, e.g. /style/review.md.",
        json_schema_extra={
            "pattern": "^/",
            "maxLength": MAX_PATH_BYTES,  # characters: never more than its bytes
            "not": {"pattern": _BAD_PATH},
        },
    )
    content: str = Field(description="UTF-8 text, at most 100 kB; written once, never updated.")

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_MEMORY_BYTES:
            fail(f"memory content is {size} bytes; the limit is {MAX_MEMORY_BYTES} (100 kB)")
        return value


class MemoryStoreSpec(SpecModel):
    """Desired state of a memory store: the create fields of POST /v1/memory_stores."""

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_NAME,
            json_schema_extra={"not": {"pattern": f"[{_CONTROL}]"}},  # as _no_control says
        ),
    ] | None = Field(
        default=None,
        description="Remote name (sets the mount directory /mnt/memory/<slug>); defaults to "
        "the document name.",
    )
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] | None = Field(
        default=None, description="Shown to the agent when the store is mounted; up to 1,024."
    )
    metadata: Metadata | None = None
    memories: Annotated[list[MemorySeed], Field(max_length=MAX_SEEDS)] | None = Field(
        default=None,
        description="Seed memories, written when the store is created and never changed "
        "afterwards (the agents own the content).",
    )

    @field_validator("name")
    @classmethod
    def _no_control(cls, value: str | None) -> str | None:
        # the provider refuses them at create (it names the mount directory)
        if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
            fail("a memory store's name must not hold control characters (a tab, a line break)")
        return value

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("memories")
    @classmethod
    def _unique_paths(cls, memories: list[MemorySeed] | None) -> list[MemorySeed] | None:
        paths = [seed.path for seed in memories or ()]
        fail_each(
            (f"memory path '{paths[index]}' is seeded twice", (index, "path"))
            for index in repeats(paths)
        )
        return memories
