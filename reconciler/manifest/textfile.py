"""Long text kept in its own file: ``system: {from_file: prompts/reviewer.md}``.

An Agent's ``system`` and the ``text`` of a Deployment's initial message blocks may be
``{from_file: PATH}`` instead of a string, and a MemoryStore's seed ``{path, from_file: PATH}``
instead of ``{path, content}``. The loader reads each such file when it loads the
manifests, so the document (and everything after it: the plan's diff, the lockfile's digest,
policies) holds the text itself, and a prompt file diffs line by line like any string.

``PATH`` is relative to the manifest file that names it, and must stay inside the repository
after following symlinks (``secret.confined_path``, as for ``from_file`` secrets); the file is
read through ``files.read_limited`` (a regular file, at most ``MAX_TEXT_FILE_BYTES``), as
UTF-8, exactly as written (a final newline included; a byte-order mark dropped). Errors point
at the ``from_file``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from reconciler.errors import ManifestIssue

from .files import MAX_TEXT_FILE_BYTES, FileRefused, read_limited
from .messages import format_path
from .secret import OutsideRepository, confined_path
from .yamlsource import DataPath, SourceLocation

FROM_FILE = "from_file"
#: the JSON Schema of the file form, beside the string form of those fields
FILE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        FROM_FILE: {
            "type": "string",
            "minLength": 1,
            "description": "A UTF-8 text file, relative to this manifest file and inside the "
            "repository; its whole content is the value.",
        }
    },
    "required": [FROM_FILE],
    "additionalProperties": False,
}


def text_field_paths(kind: Any, spec: Any) -> Iterator[DataPath]:
    """The places in a document's ``spec`` that may hold ``{from_file: PATH}``."""
    if not isinstance(spec, dict):
        return
    if kind == "Agent":
        yield ("spec", "system")
    elif kind == "Deployment":
        events = spec.get("initial_events")
        for i, event in enumerate(events if isinstance(events, list) else ()):
            content = event.get("content") if isinstance(event, dict) else None
            for j, block in enumerate(content if isinstance(content, list) else ()):
                if isinstance(block, dict):
                    yield ("spec", "initial_events", i, "content", j, "text")


def read_text_files(
    data: dict[str, Any],
    manifest_dir: Path,
    root: Path,
    locate: Any,
) -> list[ManifestIssue]:
    """Replace each ``{from_file: PATH}`` text field of ``data`` by the file's text, in place.

    Args:
        data: one document as parsed (``kind``, ``spec``, ...); edited in place.
        manifest_dir: the directory of the manifest file (PATH is relative to it).
        root: the repository root the file must stay in.
        locate: ``(path, point) -> SourceLocation`` of the document's nodes.

    Returns:
        An issue for each file that is outside the repository, missing, unreadable, too large,
        not UTF-8 or empty, or a mapping that is not ``{from_file: PATH}``.
    """
    issues: list[ManifestIssue] = []
    for path in list(text_field_paths(data.get("kind"), data.get("spec"))):
        parent = _container(data, path[:-1])
        value = parent.get(path[-1]) if parent is not None else None
        if not isinstance(value, dict):
            continue
        where: SourceLocation = locate(path + (FROM_FILE,), "value")
        text, problem = _read(value, manifest_dir, root)
        if problem is not None:
            if FROM_FILE not in value or set(value) != {FROM_FILE}:
                where = locate(path, "key")
                shown = format_path(path)
            else:
                shown = format_path(path + (FROM_FILE,))
            issues.append(ManifestIssue(where.file, where.line, where.col, problem, shown))
            continue
        assert parent is not None
        parent[path[-1]] = text
    if data.get("kind") == "MemoryStore":
        issues += _read_seed_files(data.get("spec"), manifest_dir, root, locate)
    return issues


def _read_seed_files(spec: Any, manifest_dir: Path, root: Path, locate: Any) -> list[ManifestIssue]:
    """A memory seed ``{path, from_file: PATH}`` becomes ``{path, content: <the file>}``."""
    seeds = spec.get("memories") if isinstance(spec, dict) else None
    issues: list[ManifestIssue] = []
    for index, seed in enumerate(seeds if isinstance(seeds, list) else ()):
        if not isinstance(seed, dict) or FROM_FILE not in seed:
            continue
        path: DataPath = ("spec", "memories", index, FROM_FILE)
        text, problem = _read({FROM_FILE: seed[FROM_FILE]}, manifest_dir, root)
        if "content" in seed:
            problem = "give content or from_file, not both"
        if problem is not None:
            where: SourceLocation = locate(path, "value")
            issues.append(
                ManifestIssue(where.file, where.line, where.col, problem, format_path(path))
            )
            continue
        del seed[FROM_FILE]
        seed["content"] = text
    return issues


def stand_in_unread(data: dict[str, Any]) -> list[DataPath]:
    """Put a stand-in text where ``read_text_files`` left a file unread, in place.

    So the rest of the document is still validated and every error is reported at once (a
    typo beside a missing prompt file, not only after the file is fixed); the document is
    not loaded. Returns the places whose errors were reported already.
    """
    unread: list[DataPath] = []
    for path in list(text_field_paths(data.get("kind"), data.get("spec"))):
        parent = _container(data, path[:-1])
        if parent is not None and isinstance(parent.get(path[-1]), dict):
            parent[path[-1]] = ""
            unread.append(path)
    spec = data.get("spec")
    seeds = (
        spec.get("memories")
        if data.get("kind") == "MemoryStore" and isinstance(spec, dict)
        else None
    )
    for index, seed in enumerate(seeds if isinstance(seeds, list) else ()):
        if isinstance(seed, dict) and FROM_FILE in seed:
            del seed[FROM_FILE]
            seed.setdefault("content", "")
            unread.append(("spec", "memories", index, "content"))
    return unread


def _container(data: Any, path: DataPath) -> Any:
    for key in path:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data if isinstance(data, dict) else None


def _read(value: dict[Any, Any], manifest_dir: Path, root: Path) -> tuple[str, str | None]:
    """The text a ``{from_file: PATH}`` names, or the problem with it."""
    unknown = [str(k) for k in value if k != FROM_FILE]
    if unknown or FROM_FILE not in value:
        close = get_close_matches(unknown[0], [FROM_FILE], n=1) if unknown else []
        hint = f"; did you mean {FROM_FILE}?" if close else ""
        return "", f"expected a text or {{from_file: PATH}}{hint}"
    name = value[FROM_FILE]
    if not isinstance(name, str) or not name:
        return "", "from_file must be a path, relative to this manifest file"
    shown = f"{name} (relative to {manifest_dir.as_posix()})"
    try:
        real = confined_path(name, manifest_dir, root=root)
        raw = read_limited(real, MAX_TEXT_FILE_BYTES)
    except OutsideRepository as outside:
        return "", (
            f"text file {name} is outside the repository ({outside.root}): from_file may only "
            "name a file inside it, after following symlinks"
        )
    except FileRefused as refused:
        return "", f"text file {shown} {refused.reason}"
    except FileNotFoundError:
        return "", f"text file {shown} does not exist; create it or fix the path"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "", f"text file {shown} is a symbolic link loop; fix the link"
        return "", f"cannot read text file {shown}: {exc.strerror}"
    try:
        # a byte-order mark (an editor's) is no part of the text: kept, it made a new agent
        # version for a change nobody can see
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return "", f"text file {shown} is not UTF-8 text"
    if not text.strip():
        return "", f"text file {shown} is empty; write the text in it, or remove the field"
    return text, None
