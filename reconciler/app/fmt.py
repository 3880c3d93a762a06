"""``fmt``: canonical formatting of manifests that keeps comments (ruamel.yaml)."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.engine.keyorder import key_order
from reconciler.errors import (
    FormatError,
    ManifestError,
    ManifestIssue,
)
from reconciler.jsontypes import JSON
from reconciler.manifest.files import (
    MAX_MANIFEST_BYTES,
    SKILL_FILE,
    FileRefused,
    read_limited,
)
from reconciler.manifest.files import manifest_files as directory_files
from reconciler.manifest.files import yaml_files as manifest_files
from reconciler.manifest.yamlcomments import assign_comments, restore_comments, split_comments
from reconciler.manifest.yamlsource import (
    NESTED_TOO_DEEPLY,
    UNICODE_BREAK,
    UNICODE_BREAKS,
    decode_source,
    parse_documents,
)
from reconciler.state import write_text_atomic


def _yaml() -> Any:
    from ruamel.yaml import YAML  # imported late: only fmt and import need it

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = MAX_MANIFEST_BYTES + 1  # never fold a long line: none is longer than a file
    y.indent(mapping=2, sequence=4, offset=2)
    # [{ref: a}] stays so; ruamel would write the one-key mapping as [ref: a]
    y.brace_single_entry_mapping_in_flow_sequence = True
    return y


def _inline(key: Any, value: JSON) -> bool:
    """Small leaf mappings read best on one line: ``permission_policy: {type: always_ask}``,
    ``token: {from_env: GITHUB_TOKEN}``, ``agent: {ref: coder, version: 3}``."""
    if key in (None, "spec", "metadata") or not 1 <= len(value) <= 2:
        return False
    scalars = all(isinstance(v, str | int | float | bool) for v in value.values())
    return scalars and sum(len(f"{k}: {v}, ") for k, v in value.items()) <= 60


def _plain_to_yaml(value: Any, key: Any = None) -> Any:
    """Plain data -> ruamel nodes: multi-line strings as literal blocks (``|``), small leaf
    mappings in flow style, a string holding a Unicode line break double-quoted."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

    if isinstance(value, str) and any(c in value for c in UNICODE_BREAKS):
        # written raw, YAML reads it as a new line and validate refuses it: escaped (\L)
        return DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        node = CommentedMap((k, _plain_to_yaml(v, k)) for k, v in value.items())
        if _inline(key, value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        return CommentedSeq(_plain_to_yaml(v) for v in value)
    if isinstance(value, str) and "\n" in value.rstrip("\n") and _literal_safe(value):
        return LiteralScalarString(value)
    return value


def _literal_safe(text: str) -> bool:
    # literal blocks cannot carry trailing spaces on a line, tabs or a leading space exactly
    return not any(line != line.rstrip() for line in text.split("\n")) and not text.startswith(
        (" ", "\t")
    )


def dump_documents(documents: Iterable[JSON]) -> str:
    """Plain-data documents as one canonical multi-document YAML text (as ``fmt`` writes it)."""
    out = io.StringIO()
    _yaml().dump_all([_plain_to_yaml(d) for d in documents], out)
    return out.getvalue()


def _reorder(node: Any, kind: str | None, path: tuple[str | int, ...]) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        if path == ():
            kind = node.get("kind") if isinstance(node.get("kind"), str) else None
        keys = list(node.keys())
        wanted = key_order(path, [k for k in keys if isinstance(k, str)], kind)
        wanted += [k for k in keys if not isinstance(k, str)]
        if wanted != keys:
            for key in wanted:
                node.move_to_end(key)
        for key in wanted:
            _reorder(node[key], kind, path + (key,))
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            _reorder(item, kind, path + (i,))


_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _comments(text: str) -> Counter[str]:
    """Every ``# ...`` of a text (block-scalar lines too: they are kept verbatim anyway)."""
    found: Counter[str] = Counter()
    for line in text.splitlines():
        match = _COMMENT.search(line)
        if match:
            found[match.group(1).strip()] += 1
    return found


def format_text(text: str, *, name: str = "<string>") -> str:
    """``text`` in canonical form: key order (see ``engine.keyorder.key_order``), two-space
    indentation, sequences indented under their key, one ``---`` between documents, every
    comment and every quoting style kept; LF line endings.

    Raises:
        ManifestError: the text is not YAML (the issue says where).
        FormatError: formatting would drop a comment or change the data.
    """
    # the canonical form has LF line endings: ruamel would keep the CR of a CRLF text's
    # comments only, and leave mixed line endings. Nor has it a byte-order mark: left in,
    # it hid a comment on the first line from the count of comments kept (fmt refused)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    _check_readable(text, name)  # before ruamel: it recurses per level, breaks lines there
    # ruamel drops the comments before the first `---` (and one on that line): kept as
    # written, with the marker, and the documents after it formatted
    header = _HEADER.match(text)
    head = header.group(0) if header and "#" in header.group(0) else ""
    # and would indent by four the comment of a later `--- # comment`: put on a line of its
    # own, it stays at the top of the document it names
    body = _MARKER_COMMENT.sub(r"---\n\1", text[len(head) :])
    result = _format_once(body, name)
    # ruamel may place a comment oddly where fmt moved a key (a comment line before a key
    # that becomes a list item's first, after a flow mapping, lands after a bare `-`); its
    # next pass settles it. What fmt writes is formatted: fmt --check after fmt passes.
    for _ in range(_MAX_PASSES):
        again = _format_once(result, name)
        if again == result:
            break
        result = again
    return head + result


#: a document marker with a comment after it
_MARKER_COMMENT = re.compile(r"^---[ \t]+(#[^\n]*)$", re.MULTILINE)
#: blank and comment lines, then a first `---` (with a comment of its own, or none)
_HEADER = re.compile(r"\A(?:[ \t]*(?:#[^\n]*)?\n)*---(?:[ \t]+#[^\n]*)?[ \t]*\n")


def _check_readable(text: str, name: str) -> None:
    """Refuse a value nested deeper than the manifests allow (``yamlsource.MAX_DEPTH``) and a
    Unicode line break (which ruamel would read as a new line too), at its place, as
    ``validate`` does."""
    _, issues = parse_documents(text)
    deep = [i for i in issues if i.message.startswith((NESTED_TOO_DEEPLY, UNICODE_BREAK))]
    if deep:
        raise ManifestError([ManifestIssue(name, i.line, i.col, i.message) for i in deep[:1]])


def _yaml_problem(text: str, line: int, col: int, problem: str) -> str:
    """What is wrong at ``line:col``, in the words ``validate`` uses there when it has some:
    the YAML library's own (``found duplicate key "token" with value "ghp_..." (original
    value: ...)``) quote values, which may be inline secrets validate never repeats."""
    documents, issues = parse_documents(text)
    found = [*issues, *(i for d in documents for i in d.issues)]
    said = [i.message for i in found if (i.line, i.col) == (line, col)]
    return said[0] if said else f"not valid YAML: {problem}"


#: passes after the first until the text no longer changes (one suffices in practice)
_MAX_PASSES = 3


def _format_once(text: str, name: str) -> str:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    y = _yaml()
    try:
        before = _data(text)  # a tag the safe loader does not know (!custom) fails here
        # ruamel keeps a comment with the value before it, and would move it with that
        # value: the comments are taken out, given their owners, and put back after
        stripped = split_comments(text)
        docs = list(y.load_all(stripped.text))
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise ManifestError(
            ManifestIssue(name, line, col, _yaml_problem(text, line, col, str(err.problem)))
        ) from None
    except YAMLError as err:
        # no place of its own (a character the reader refuses): validate's reader has one
        _, said = parse_documents(text)
        if said:
            issue = said[0]
            raise ManifestError(ManifestIssue(name, issue.line, issue.col, issue.message)) from None
        raise ManifestError(ManifestIssue(name, 1, 1, f"not valid YAML: {err}")) from None
    if all(d is None for d in docs):
        # comments only (a note, a document commented out): no data to put in order
        return text.rstrip() + "\n" if text.strip() else ""
    try:
        owned = assign_comments(stripped, docs)
    except ValueError:  # e.g. a document after `...` with no `---`
        raise FormatError(
            f"{name}: cannot tell which document each comment belongs to; left unchanged"
        ) from None
    parts = []
    for doc, doc_comments in zip(docs, owned, strict=True):
        if doc is None:  # a document of comments only stays between its two ---
            if doc_comments.header:
                parts.append("\n".join(doc_comments.header) + "\n")
            continue
        _reorder(doc, None, ())
        out = io.StringIO()
        y.dump(doc, out)
        parts.append(restore_comments(out.getvalue(), doc_comments))
    result = "---\n".join(parts)
    if _data(result) != before:
        raise FormatError(f"{name}: formatting would change the data; left unchanged")
    if _comments(result) != _comments(text):
        raise FormatError(
            f"{name}: formatting would lose or move a comment the YAML library cannot keep; "
            "left unchanged"
        )
    return result


def _data(text: str) -> list[Any]:
    from ruamel.yaml import YAML

    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


@dataclass(frozen=True)
class FormatReport:
    """What ``fmt`` found: every file looked at, those not in canonical form, those it
    could not format (path -> why), and those it left alone as no manifest (path -> why)."""

    files: tuple[Path, ...]
    changed: tuple[Path, ...]
    refused: dict[Path, str] = field(default_factory=dict)
    skipped: dict[Path, str] = field(default_factory=dict)


def _not_manifests(files: list[Path], manifests: Path | None) -> dict[Path, str]:
    """The ``files`` below the ``manifests`` directory that its own walk does not read (a
    skill's files, what ``.reconcilerignore`` leaves out, hidden ones), each with why: a
    path given by name (the pre-commit hook passes every changed ``manifests/*.yaml``) is
    no reason to rewrite a skill's data, which would upload a new version of the skill.
    Outside ``manifests`` (a hook set up for another directory without ``--manifests``), a
    file below a directory holding ``SKILL.md`` within the working directory is one too."""
    found: dict[Path, str] = {}
    if manifests is None or not manifests.is_dir():
        root = None
        read_set: set[Path] = set()
        ignored: set[Path] = set()
    else:
        root = manifests.resolve()
        read, left_out = directory_files(manifests)
        read_set = {p.resolve() for p in read}
        ignored = {p.resolve() for p in left_out}
    for file in files:
        full = file.resolve()
        if root is None or not full.is_relative_to(root):
            here = Path.cwd().resolve()
            if full.is_relative_to(here) and any(
                (d / SKILL_FILE).is_file() for d in full.parents if d.is_relative_to(here)
            ):
                found[file] = (
                    f"{file}: a skill's file (its directory holds {SKILL_FILE}); not a manifest"
                )
            continue
        if full in read_set:
            continue
        if full in ignored:
            found[file] = f"{file}: .reconcilerignore leaves it out; not a manifest"
        elif any(
            (d / SKILL_FILE).is_file() for d in full.parents if d != root and d.is_relative_to(root)
        ):
            found[file] = (
                f"{file}: a skill's file (its directory holds {SKILL_FILE}); not a manifest"
            )
        elif any(part.startswith(".") for part in full.relative_to(root).parts):
            found[file] = f"{file}: hidden; not a manifest"
        else:
            found[file] = f"{file}: not a YAML file (*.yaml, *.yml); not a manifest"
    return found


def format_paths(
    paths: Iterable[Path], *, check: bool = False, manifests: Path | None = None
) -> FormatReport:
    """Bring manifest files into canonical form (``format_text``), or with ``check`` only say
    which are not. Files below ``manifests`` that are no manifests there (a skill's files,
    ignored or hidden ones) are left alone and listed in ``skipped``, also when named.

    Raises:
        ManifestError: a path does not exist (a file that is not YAML is in ``refused``).
    """
    listed = manifest_files(paths)
    skipped = _not_manifests(listed, manifests)
    files = [f for f in listed if f not in skipped]
    changed: list[Path] = []
    refused: dict[Path, str] = {}
    for file in files:
        try:
            raw = read_limited(file, MAX_MANIFEST_BYTES)
        except FileRefused as err:  # a FIFO or /dev/zero named *.yaml: never read
            refused[file] = f"{file}: this file {err.reason}; remove or replace it"
            continue
        _, issue = decode_source(raw)  # not UTF-8 text: said at its place, as validate does
        if issue is not None:
            refused[file] = f"{file}:{issue.line}:{issue.col}: {issue.message}"
            continue
        text = raw.decode("utf-8")  # with its BOM, if any: the canonical form has none
        try:
            formatted = format_text(text, name=str(file))
        except FormatError as err:
            refused[file] = str(err)
            continue
        except ManifestError as err:  # not YAML: said at its place; the other files go on
            refused[file] = "; ".join(str(issue) for issue in err.issues)
            continue
        if formatted == text:
            continue
        if not check:
            try:
                write_text_atomic(file, formatted)
            except OSError as err:
                refused[file] = f"{file}: cannot rewrite it ({err.strerror or err}); left as it was"
                continue
        changed.append(file)
    return FormatReport(tuple(files), tuple(changed), refused, skipped)
