"""Read one manifest file into plain data plus a position index, and nothing else.

This module turns bytes into ``SourceDocument`` values: the document as plain Python data
(dicts, lists, str, int, float, bool, None) and ``{path: Position}`` for every mapping key,
mapping value and list item, so later stages can point each error at ``file:line:col``.
It knows YAML, not manifests: it never looks at ``kind`` or ``spec``.

Deliberate differences from ``yaml.safe_load``:

* Scalars follow the YAML 1.2 core schema: only ``true``/``false`` are booleans (``no``,
  ``on``, ``yes`` stay strings), dates and times stay strings, ``12:30`` is not an integer.
* Duplicate keys in one mapping are errors (PyYAML keeps the last one silently).
* Aliases (``*name``) are rejected, so an alias bomb costs nothing; anchors alone are harmless.
  So is a plain ``<<`` merge key (its mapping's other keys are kept, its errors not checked).
* Tags other than the core ones (``!!str``, ``!!int``, ...) are rejected.

Problems are returned as ``SourceIssue`` values, never raised.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

try:
    from yaml.cyaml import CParser as _CParser  # libyaml: the fast scanner and parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

PathElem = str | int
DataPath = tuple[PathElem, ...]

#: Files larger than this are refused before parsing (a manifest is hand-written text).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deeper nesting than this is refused (PyYAML and our own walk are recursive).
MAX_DEPTH = 64
#: a plain ``<<`` key (YAML 1.1's merge key); a quoted ``"<<"`` is a key like any other
MERGE_KEY_MESSAGE = (
    "YAML merge keys (<<) are not supported, nor the aliases (*name) they merge; "
    "write the keys out in full"
)
#: how the issue of a value nested deeper than ``MAX_DEPTH`` begins (``fmt`` looks for it)
NESTED_TOO_DEEPLY = "nested deeper than"

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass(frozen=True, slots=True)  # one per node of every manifest: slots halve its size
class Position:
    """Where one node sits in its file: 1-based line and column of its key and its value."""

    key_line: int
    key_col: int
    line: int
    col: int


@dataclass(frozen=True)
class SourceLocation:
    """A 1-based ``file:line:col`` in a manifest file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class SourceIssue:
    """A problem found while reading YAML; ``path`` is the data path where it sits."""

    line: int
    col: int
    message: str
    path: DataPath = ()


@dataclass
class SourceDocument:
    """One YAML document of a file: plain data and the position of every node in it."""

    data: Any
    positions: Mapping[DataPath, Position]
    start: Position
    issues: list[SourceIssue] = field(default_factory=list)


class AliasRejected(yaml.MarkedYAMLError):
    """Raised by the composer at the first ``*alias``; aliases are not supported."""


class TooDeep(yaml.MarkedYAMLError):
    """Raised by the composer when nesting exceeds ``MAX_DEPTH`` (before recursion hurts)."""


class _LibyamlDiffers(yaml.YAMLError):
    """The libyaml loader met a construct it positions differently: use ``ManifestLoader``."""


class _StrictComposing:
    """Composer rules shared by both loaders: no aliases, no nesting beyond ``MAX_DEPTH``."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent):
            raise AliasRejected(
                None,
                None,
                f"YAML aliases are not supported (found *{event.anchor}); "
                "write the value out in full",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise TooDeep(
                None,
                None,
                f"nested deeper than {MAX_DEPTH} levels; flatten this value",
                event.start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        finally:
            self._depth -= 1


class ManifestLoader(_StrictComposing, yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars that refuses aliases while composing."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}


ManifestLoader.add_implicit_resolver(
    _NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
ManifestLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ManifestLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
ManifestLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


#: Where libyaml accepts what PyYAML rejects, or reads it differently: tabs, BOMs and Unicode
#: line breaks inside a stream, tags (``!`` starting a token), a block scalar header running
#: into a comment (``|#``). Text holding any of them goes to the pure-Python loader. Each is
#: looked for only where its first character is in the text: ``in`` finds a character ~100x
#: faster than a search of one alternation of the three does in a 200 KB file.
_LIBYAML_DIFFERS_CHARACTERS = "\t\r\x85\ufeff\u2028\u2029"
_TAG_START = re.compile("(?:^|[\\s,\\[\\]{}:-])!")
_HEADER_COMMENT = re.compile("[|>][-+0-9]*#")


def _libyaml_may_differ(text: str) -> bool:
    """Whether libyaml might read ``text`` otherwise than PyYAML (then it is not used).

    Besides the characters and patterns above: a ``?`` after the first ``[`` or ``{`` (the two split plain
    scalars differently inside flow collections).
    """
    if (
        any(c in text for c in _LIBYAML_DIFFERS_CHARACTERS)
        or ("!" in text and _TAG_START.search(text))
        or (("|" in text or ">" in text) and _HEADER_COMMENT.search(text))
    ):
        return True
    opens = [i for i in (text.find("["), text.find("{")) if i >= 0]
    return bool(opens) and text.find("?", min(opens)) >= 0


if _CParser is not None:

    class _LibyamlLoader(Composer, _CParser, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
        """``ManifestLoader``'s nodes, read by libyaml's scanner and parser: ~10x faster.

        Composing is a lean copy of PyYAML's ``Composer`` (same nodes, tags and marks). It
        does not report problems itself: on an alias, an anchor, nesting beyond
        ``MAX_DEPTH`` or an empty value libyaml places elsewhere it raises
        ``_LibyamlDiffers``, and ``parse_documents`` then reads the text again with
        ``ManifestLoader`` - as it does for any error libyaml reports - so every message
        and position a user sees is the pure-Python loader's.
        """

        yaml_implicit_resolvers = ManifestLoader.yaml_implicit_resolvers

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._text = stream

        def compose_document(self) -> Node:
            self.get_event()  # DocumentStartEvent
            node = self._compose(0)
            self.get_event()  # DocumentEndEvent
            return node

        def _compose(self, depth: int) -> Node:
            event = self.get_event()
            kind = type(event)
            if kind is yaml.AliasEvent or event.anchor is not None or depth >= MAX_DEPTH:
                raise _LibyamlDiffers("an alias, an anchor or deep nesting")
            tag = event.tag
            if kind is yaml.ScalarEvent:
                value = event.value
                if tag is None or tag == "!":
                    tag = self.resolve(ScalarNode, value, event.implicit)
                start = event.start_mark
                if not value and not event.style and start.index == event.end_mark.index:
                    # An empty value: both place it right after its ':' or '-', except where
                    # no indicator precedes it (``? key`` alone, a flow ``key:`` at a break).
                    at = start.index
                    if depth and (at == 0 or self._text[at - 1] not in ":-"):
                        raise _LibyamlDiffers("libyaml places this empty value elsewhere")
                return ScalarNode(tag, value, start, event.end_mark, style=event.style)
            if kind is yaml.SequenceStartEvent:
                if tag is None or tag == "!":
                    tag = self.resolve(SequenceNode, None, event.implicit)
                items: list[Node] = []
                node: Node = SequenceNode(
                    tag, items, event.start_mark, None, flow_style=event.flow_style
                )
                while not self.check_event(yaml.SequenceEndEvent):
                    items.append(self._compose(depth + 1))
            else:
                if tag is None or tag == "!":
                    tag = self.resolve(MappingNode, None, event.implicit)
                pairs: list[tuple[Node, Node]] = []
                node = MappingNode(tag, pairs, event.start_mark, None, flow_style=event.flow_style)
                while not self.check_event(yaml.MappingEndEvent):
                    key = self._compose(depth + 1)
                    pairs.append((key, self._compose(depth + 1)))
            node.end_mark = self.get_event().end_mark
            return node

else:  # pragma: no cover - PyYAML built without libyaml
    _LibyamlLoader = None  # type: ignore[assignment, misc]


def _tab_problem(buffer: str, pointer: int) -> str:
    """What the tab at ``pointer`` is: indentation, a separator after ``key:``, or one
    after a value or a ``-`` (to align a comment); never naming a value (a secret?)."""
    start = buffer.rfind("\n", 0, pointer) + 1
    words = buffer[start:pointer].split()
    key = words[-1] if words else ""  # the key alone, never a value before it
    if key.endswith(":") and len(key) <= 80 and key.isprintable():
        return (
            f"tab character after '{key}'; YAML separates a key from its value with "
            "spaces: replace the tab by a space"
        )
    if words:
        return (
            "tab character after a value or a '-' on this line; YAML separates them and a "
            "comment with spaces: replace the tab by a space"
        )
    return "tab character used for indentation; YAML indentation must use spaces"


def _mark_pos(mark: yaml.Mark | None) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


_BITS = 20
_MASK = (1 << _BITS) - 1


#: ``Position``'s four numbers, as the builder records them (``Positions`` packs them)
_Where = tuple[int, int, int, int]


def _where(key: Node | None, value: Node) -> _Where:
    vline, vcol = _mark_pos(value.start_mark)
    if key is None:
        return vline, vcol, vline, vcol
    kline, kcol = _mark_pos(key.start_mark)
    return kline, kcol, vline, vcol


class Positions(Mapping[DataPath, Position]):
    """The position of every node of one document (a 10,000-document project has ~100,000
    of them), read back as ``Position``.

    Documents of one kind mostly have the same paths in the same order: that order (path ->
    index) is kept once for all of them (``_LAYOUTS``), and each document keeps its positions
    as two 64-bit words a path in one array - key line and column, and the value's line (as
    a gap from the key's) and column: 16 bytes a path and ~120 a document, where a dict of
    its own and an int a path took ~85 bytes a path. A position that does not fit (a column
    or a gap past 2**20, a line past 2**42) is kept whole, aside."""

    __slots__ = ("_layout", "_odd", "_words")

    def __init__(self, positions: dict[DataPath, _Where]) -> None:
        self._layout = _layout(tuple(positions))
        words = array("q", bytes(16 * len(positions)))
        odd: dict[DataPath, Position] = {}
        for i, (path, (kline, kcol, vline, vcol)) in enumerate(positions.items()):
            gap = vline - kline
            if kcol > _MASK or vcol > _MASK or not 0 <= gap <= _MASK or kline >= 1 << 42:
                odd[path] = Position(kline, kcol, vline, vcol)
                continue
            words[2 * i] = kline << _BITS | kcol
            words[2 * i + 1] = gap << _BITS | vcol
        self._words = words
        self._odd = odd or None

    def __getitem__(self, path: DataPath) -> Position:
        i = self._layout[path]
        if self._odd is not None and path in self._odd:
            return self._odd[path]
        key, value = self._words[2 * i], self._words[2 * i + 1]
        kline, kcol = key >> _BITS, key & _MASK
        return Position(kline, kcol, kline + (value >> _BITS), value & _MASK)

    def __contains__(self, path: object) -> bool:
        return path in self._layout

    def __iter__(self) -> Iterator[DataPath]:
        return iter(self._layout)

    def __len__(self) -> int:
        return len(self._layout)


#: Path orders seen so far, each kept once (see ``Positions``); bounded like ``_PATHS``.
_LAYOUTS: dict[tuple[DataPath, ...], dict[DataPath, int]] = {}


def _layout(paths: tuple[DataPath, ...]) -> dict[DataPath, int]:
    layout = _LAYOUTS.get(paths)
    if layout is None:
        if len(_LAYOUTS) > 20_000:  # free-form keys (metadata) can make every one differ
            _LAYOUTS.clear()
        layout = _LAYOUTS[paths] = {path: i for i, path in enumerate(paths)}
    return layout


#: Data paths seen so far, each kept once: ``("spec", "model")`` is the same in every
#: document, and 10,000 manifests would otherwise hold 10,000 copies of it.
_PATHS: dict[DataPath, DataPath] = {}


def _shared_path(path: DataPath) -> DataPath:
    if len(_PATHS) > 200_000:  # bounded: free-form keys (metadata) can be many
        _PATHS.clear()
    return _PATHS.setdefault(path, path)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


class _ScalarError(Exception):
    """A scalar whose explicit tag we cannot honour."""


def _scalar_value(node: ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag == _STR_TAG:
        _check_unicode(text)
        return text
    if tag == _NULL_TAG:
        if text in ("", "~") or text.lower() == "null":
            return None
        raise _ScalarError(f"'{text}' is not a valid !!null value")
    if tag == _BOOL_TAG:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise _ScalarError("!!bool values must be true or false")
    if tag == _INT_TAG:
        try:
            if text.startswith(("0o", "0x")):
                return int(text, 0)
            return int(text, 10)
        except ValueError:
            raise _ScalarError("this !!int value is not an integer") from None
    if tag == _FLOAT_TAG:
        try:
            value: float | None = float(text)
        except ValueError:
            value = None
        if text.lower().lstrip("+-") in (".inf", ".nan") or (
            value is not None and not math.isfinite(value)
        ):
            # JSON, which the provider speaks and the lockfile is, has no infinity or NaN:
            # sent, such a value became null (a custom tool's `maximum: .inf`)
            raise _ScalarError(
                f"'{text[:40]}' is not a number JSON can carry (no infinity, no NaN, nothing "
                "beyond 1.8e308); write a finite number, or leave the field out"
            )
        if value is None:
            raise _ScalarError("this !!float value is not a number")
        return value
    raise _ScalarError(f"unsupported YAML tag {tag}; remove the tag")


def _check_unicode(text: str) -> None:
    """Refuse a string no UTF-8 can carry: a double-quoted ``"\\ud800"`` escape is half a
    surrogate pair, which validate took and plan could not send ("a bug")."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(text[err.start])
        raise _ScalarError(
            f"'\\u{code:04x}' is a lone surrogate escape, not a character; write the "
            "character itself, or its \\U escape of eight hex digits (\\U0001F600)"
        ) from None


class _Builder:
    """Walks one composed node tree into plain data, recording positions and issues."""

    def __init__(self) -> None:
        self.positions: dict[DataPath, _Where] = {}
        self.issues: list[SourceIssue] = []

    def _issue(self, node: Node, message: str, path: DataPath) -> None:
        line, col = _mark_pos(node.start_mark)
        self.issues.append(SourceIssue(line, col, message, path))

    def build(self, node: Node, path: DataPath, depth: int) -> Any:
        if depth > MAX_DEPTH:
            self._issue(node, f"nested deeper than {MAX_DEPTH} levels; flatten this value", path)
            return None
        if isinstance(node, ScalarNode):
            try:
                return _scalar_value(node)
            except _ScalarError as exc:
                self._issue(node, str(exc), path)
                return None
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                self._issue(node, f"unsupported YAML tag {node.tag} on a list; remove it", path)
            items = []
            for index, item in enumerate(node.value):
                here = _shared_path(path + (index,))
                self.positions[here] = _where(None, item)
                items.append(self.build(item, here, depth + 1))
            return items
        if isinstance(node, MappingNode):
            return self._build_mapping(node, path, depth)
        self._issue(node, "unsupported YAML node", path)  # pragma: no cover - defensive
        return None

    def _build_mapping(self, node: MappingNode, path: DataPath, depth: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self._issue(node, f"unsupported YAML tag {node.tag} on a mapping; remove it", path)
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._issue(
                    key_node, "mapping keys must be plain strings, not lists or mappings", path
                )
                continue
            if key_node.value == "<<" and not key_node.style:  # plain: libyaml says ""
                # YAML 1.1's merge key: with no aliases there is nothing to merge, and read
                # as a field it would be "unknown field '<<'" and its keys "missing"
                self._issue(key_node, MERGE_KEY_MESSAGE, path)
                continue
            try:
                _check_unicode(key_node.value)
            except _ScalarError as exc:
                self._issue(key_node, str(exc), path)
                continue
            key = sys.intern(key_node.value)  # the same few keys in every document
            if key in first_seen:
                line, col = _mark_pos(first_seen[key].start_mark)
                self._issue(
                    key_node,
                    f"duplicate key '{key}' in this mapping (first defined at line {line}, "
                    f"column {col}); keep only one",
                    path + (key,),
                )
                continue
            first_seen[key] = key_node
            here = _shared_path(path + (key,))
            self.positions[here] = _where(key_node, value_node)
            result[key] = self.build(value_node, here, depth + 1)
        return result


def _is_empty(node: Node | None) -> bool:
    return node is None or (
        isinstance(node, ScalarNode)
        and node.tag == _NULL_TAG
        and (node.value in ("", "~") or node.value.lower() == "null")
    )


def decode_source(raw: bytes) -> tuple[str | None, SourceIssue | None]:
    """Decode file bytes as UTF-8 text, or say why they are not a manifest.

    Returns:
        ``(text, None)`` on success, ``(None, issue)`` otherwise.
    """
    if len(raw) > MAX_FILE_BYTES:
        return None, SourceIssue(
            1, 1, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it"
        )
    if b"\x00" in raw:
        return None, SourceIssue(
            1,
            1,
            "this is not a UTF-8 text file (it contains NUL bytes: binary or UTF-16?); "
            "save manifests as UTF-8 YAML",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        col = exc.start - (prefix.rfind(b"\n") + 1) + 1
        return None, SourceIssue(
            line,
            col,
            f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
        )
    return text.removeprefix("\ufeff"), None


#: YAML's limit on a ``key: value`` (implicit) key, from its first character to the colon
MAX_IMPLICIT_KEY = 1024


def _long_key(exc: yaml.MarkedYAMLError) -> SourceIssue | None:
    """The error of a ``key: value`` key longer than YAML allows, at the key, or None.

    PyYAML says "mapping values are not allowed here" or "expected ',' or '}', but got ':'"
    at the colon (or "could not find expected ':'" 1,024 characters into the key), which
    says nothing of the key."""
    problem, mark = exc.problem or "", exc.problem_mark
    if mark is None or not mark.buffer:
        return None
    buffer: str = mark.buffer
    if (
        problem == "could not find expected ':'"
        and exc.context == "while scanning a simple key"
        and exc.context_mark is not None
        and exc.context_mark.line == mark.line  # else a key over two lines, another mistake
    ):
        line, col = _mark_pos(exc.context_mark)
        return SourceIssue(line, col, _long_key_message())
    flow = problem in ("expected ',' or '}', but got ':'", "expected ',' or ']', but got ':'")
    if not (flow or problem == "mapping values are not allowed here"):
        return None
    if mark.pointer >= len(buffer) or buffer[mark.pointer] != ":":
        return None
    line_start = buffer.rfind("\n", 0, mark.pointer) + 1
    before = buffer[line_start : mark.pointer].rstrip(" ")
    if before.endswith(("'", '"')):
        start = before.rfind(before[-1], 0, len(before) - 1)
        if start < 0:
            return None
    else:
        start = max(before.rfind(c) for c in "{[,") + 1 if flow else 0
        while before[start : start + 1] == " " or before[start : start + 2] in ("- ", "? "):
            start += 1  # indentation, "- ", "? "
        if ": " in before[start:] or before[start:].endswith(":"):
            return None  # a colon inside a plain value (a: b: c), not a long key
    if len(before) - start <= MAX_IMPLICIT_KEY:
        return None
    return SourceIssue(mark.line + 1, start + 1, _long_key_message())


def _long_key_message() -> str:
    return (
        f"a mapping key longer than {MAX_IMPLICIT_KEY} characters: YAML reads a key written "
        f"`key: value` only up to {MAX_IMPLICIT_KEY}; shorten it"
    )


def _yaml_error_issue(exc: yaml.YAMLError, text: str) -> SourceIssue:
    """Turn a PyYAML exception into an issue without echoing the source line."""
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _line_col(text, exc.position)
        return SourceIssue(
            line,
            col,
            f"invalid character #x{exc.character:04x}: control characters are not "
            "allowed in YAML; remove it or escape it inside a double-quoted string"
            if isinstance(exc.character, int)
            else "invalid character in YAML",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = _mark_pos(mark)
        if isinstance(exc, AliasRejected | TooDeep):
            return SourceIssue(line, col, exc.problem or "unsupported YAML")
        problem = exc.problem or "syntax error"
        if (
            mark is not None
            and mark.pointer < len(mark.buffer or "")
            and ("\t" in problem or (mark.buffer and mark.buffer[mark.pointer] == "\t"))
        ):
            return SourceIssue(line, col, _tab_problem(mark.buffer or "", mark.pointer))
        long_key = _long_key(exc)
        if long_key is not None:
            return long_key
        message = f"invalid YAML: {problem}"
        if exc.context:
            cline, ccol = _mark_pos(exc.context_mark)
            message += f" ({exc.context} at line {cline}, column {ccol})"
        if problem.startswith("expected ',' or ']', but got '['"):
            # `contains: [Fixed [PR 42]]`: a bracket inside a flow list
            message += "; an item of a [...] list that holds [ or ] must be quoted, e.g. "
            message += "['see [docs]']"
        return SourceIssue(line, col, message)
    return SourceIssue(1, 1, f"invalid YAML: {exc}")  # pragma: no cover - defensive


#: what a Unicode line break's issue says first (``fmt`` refuses it before ruamel reads)
UNICODE_BREAK = "a Unicode line break character"
#: line breaks to YAML's readers that no editor shows as one
UNICODE_BREAKS = {"\x85": "next line", "\u2028": "line separator", "\u2029": "paragraph separator"}
_EDITOR_BREAK = re.compile(r"\r\n|\r|\n")


def unicode_break(text: str) -> SourceIssue | None:
    """The first Unicode line break of ``text``, at the line and column an editor shows:
    YAML's readers end a line there (a pasted prompt cut, a comment's tail read as data)."""
    found = [at for at in (text.find(c) for c in UNICODE_BREAKS) if at >= 0]
    if not found:
        return None
    at = min(found)
    code = f"{ord(text[at]):04X}"
    before = text[:at]
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return SourceIssue(
        len(_EDITOR_BREAK.findall(before)) + 1,
        at - start + 1,
        f"{UNICODE_BREAK} (U+{code}, {UNICODE_BREAKS[text[at]]}): YAML reads it as a new "
        "line, though editors show none (a paste from a web page or a document?); delete "
        f"it, or write it as \\u{code} in a double-quoted string",
    )


def parse_documents(text: str) -> tuple[list[SourceDocument], list[SourceIssue]]:
    """Parse every document of one YAML stream.

    Empty documents (``---`` alone, comments only, ``null``) are skipped. Documents parsed
    before a syntax error are kept, so their own problems are reported too. A Unicode line
    break (``unicode_break``) is the one issue of its file: nothing is parsed.

    Returns:
        The documents, and the file-level issues (syntax errors).
    """
    issue = unicode_break(text)
    if issue is not None:
        return [], [issue]
    if _LibyamlLoader is not None and not _libyaml_may_differ(text):
        try:
            documents, issues = _parse_with(text, _LibyamlLoader)
        except Exception:  # noqa: BLE001 - e.g. text libyaml cannot encode; PyYAML says why
            issues = [SourceIssue(1, 1, "libyaml failed")]
        if not issues:
            return documents, issues
    return _parse_with(text, ManifestLoader)


def _parse_with(text: str, loader: Any) -> tuple[list[SourceDocument], list[SourceIssue]]:
    documents: list[SourceDocument] = []
    issues: list[SourceIssue] = []
    stream = yaml.compose_all(text, Loader=loader)
    while True:
        try:
            node = next(stream)
        except StopIteration:
            break
        except yaml.YAMLError as exc:
            issues.append(_yaml_error_issue(exc, text))
            break
        except RecursionError:
            issues.append(SourceIssue(1, 1, "the YAML is nested too deeply to read"))
            break
        if _is_empty(node):
            continue
        builder = _Builder()
        data = builder.build(node, (), 0)
        start = Position(*_where(None, node))
        positions = Positions(builder.positions)
        documents.append(SourceDocument(data, positions, start, builder.issues))
    return documents, issues
