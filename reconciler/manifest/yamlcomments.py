"""Where each comment of a YAML text belongs, so ``fmt`` can put it back after reordering.

ruamel.yaml keeps a comment line with the value *before* it: when ``fmt`` moves a key, the
comment lines written above the next key moved along with it (``# the name`` above
``name:`` ended up after ``spec``'s last value), and a comment alone between two ``---``
was lost. Here each comment is read from the text itself (the gaps between the scanner's
tokens, and a block scalar's header) and given an owner as a reader would:

* a comment after a value on its line stays on that value's line (``system: |  # why``);
* comment lines at the top of a document stay at its top (a header, a modeline);
* a comment line above a key or list item goes with it (indented as it is, wherever the
  key goes);
* a comment line indented deeper than what follows it closes the block above it
  (``  # more tools later`` after the last tool stays after the tools);
* comment lines at the end of a document, as far left as its keys, stay at its end;
* a document that holds only comments stays between its two ``---``.

``split_comments`` returns the text without its comments (for ruamel to reorder) and where
they belong; ``restore_comments`` writes them into one reordered document. Nothing here
reorders, checks the data, or reads files.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Path = tuple[Any, ...]

#: a block scalar's header with a comment after it: ``|  # why``, ``>-  # why``
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*([ \t]+)(#[^\n]*)")


@dataclass(frozen=True)
class _Comment:
    line: int  # 0-based, in the original text
    col: int
    text: str  # from the ``#``
    #: after content on its line; then ``gap`` is the white space between the two
    eol: bool
    gap: str


@dataclass
class DocumentComments:
    """The comments of one document, by owner."""

    header: list[str] = field(default_factory=list)  # lines as written
    trailer: list[str] = field(default_factory=list)  # lines as written
    before: dict[Path, list[str]] = field(default_factory=dict)
    after: dict[Path, list[str]] = field(default_factory=dict)
    eol: dict[Path, list[tuple[str, str]]] = field(default_factory=dict)  # (gap, text)

    def __bool__(self) -> bool:
        return bool(self.header or self.trailer or self.before or self.after or self.eol)


@dataclass(frozen=True)
class _Node:
    path: Path
    line: int
    col: int  # a key's column, or a list item's dash


def _comments(text: str) -> tuple[list[_Comment], list[int]]:
    """Every comment of ``text`` (in the gaps between tokens, and on block scalar headers),
    and the line each document starts on (a first one without ``---`` on line 0)."""
    from ruamel.yaml import YAML
    from ruamel.yaml import tokens as t

    found: list[_Comment] = []
    starts: list[int] = []
    in_document = False
    end = 0
    for token in YAML(typ="safe", pure=True).scan(text):
        start = token.start_mark.index
        if start > end:
            found += _gap_comments(text, end, start)
        if isinstance(token, t.DocumentStartToken):
            starts.append(token.start_mark.line)
            in_document = True
        elif isinstance(token, t.DocumentEndToken):
            in_document = False
        elif not in_document and not isinstance(
            token, t.StreamStartToken | t.StreamEndToken | t.DirectiveToken
        ):
            starts.append(token.start_mark.line if starts else 0)
            in_document = True
        if isinstance(token, t.ScalarToken) and token.style in ("|", ">"):
            header = _BLOCK_HEADER.match(text, start)
            if header is not None:
                found.append(_comment(text, header.start(2), header.group(2)))
        end = max(end, token.end_mark.index)
    if end < len(text):
        found += _gap_comments(text, end, len(text))
    return found, starts


def _gap_comments(text: str, start: int, end: int) -> Iterator[_Comment]:
    """The comments in ``text[start:end]``, which holds only white space and comments."""
    at = text.find("#", start, end)
    while at != -1:
        stop = text.find("\n", at)
        stop = len(text) if stop == -1 else stop
        yield _comment(text, at, text[at:stop])
        at = text.find("#", stop, end)


def _comment(text: str, at: int, body: str) -> _Comment:
    line_start = text.rfind("\n", 0, at) + 1
    before = text[line_start:at]
    stripped = before.rstrip(" \t")
    return _Comment(
        line=text.count("\n", 0, at),
        col=at - line_start,
        text=body.rstrip(),
        eol=bool(stripped.strip()),
        gap=before[len(stripped) :] or " ",
    )


@dataclass(frozen=True)
class Stripped:
    """A text without its comments, and what ``assign_comments`` needs to place them."""

    text: str
    #: the original line of each of its lines
    line_map: list[int]
    comments: list[_Comment]
    #: the original line each document starts on
    starts: list[int]


def split_comments(text: str) -> Stripped:
    """``text`` without its comments: comment lines removed, comments after values cut."""
    comments, starts = _comments(text)
    lines = text.split("\n")
    dropped: set[int] = set()
    for comment in comments:
        if comment.eol:
            lines[comment.line] = lines[comment.line][: comment.col].rstrip(" \t")
        else:
            dropped.add(comment.line)
    kept = [i for i in range(len(lines)) if i not in dropped]
    return Stripped("\n".join(lines[i] for i in kept), kept, comments, starts)


def assign_comments(stripped: Stripped, documents: list[Any]) -> list[DocumentComments]:
    """Give each comment its owner in ``documents``, ``load_all(stripped.text)`` of a
    round-trip loader (empty documents, None, included): one ``DocumentComments`` each."""
    if len(stripped.starts) != len(documents):
        raise ValueError("the documents were not counted as the loader counts them")
    lines = stripped.text.split("\n")
    nodes = [_Nodes(list(_walk(doc, (), lines, stripped.line_map))) for doc in documents]
    owned = [DocumentComments() for _ in documents]
    for comment in stripped.comments:
        index = max(bisect.bisect_right(stripped.starts, comment.line) - 1, 0)
        nodes[index].assign(comment, owned[index])
    return owned


class _Nodes:
    """The keys and items of one document in document order (so by line), to find a
    comment's neighbours."""

    def __init__(self, nodes: list[_Node]) -> None:
        self.nodes = nodes
        self.lines = [n.line for n in nodes]
        self.by_path = {n.path: n for n in nodes}
        self.left = min((n.col for n in nodes if len(n.path) == 1), default=0)

    def assign(self, comment: _Comment, owned: DocumentComments) -> None:
        first_here = bisect.bisect_left(self.lines, comment.line)
        first_later = bisect.bisect_right(self.lines, comment.line)
        earlier = self.nodes[first_here - 1] if first_here else None
        if comment.eol:
            owner = self.nodes[first_later - 1] if first_later else None
            if owner is None:
                owned.header.append(" " * comment.col + comment.text)
            else:
                owned.eol.setdefault(owner.path, []).append((comment.gap, comment.text))
            return
        if earlier is None:
            owned.header.append(" " * comment.col + comment.text)
            return
        later = self.nodes[first_later] if first_later < len(self.nodes) else None
        if later is not None and comment.col <= later.col:
            owned.before.setdefault(later.path, []).append(comment.text)
            return
        if later is None and comment.col <= self.left:
            owned.trailer.append(" " * comment.col + comment.text)  # the end of the document
            return
        # deeper than what follows (or nothing follows): it closes the block above it, at
        # the deepest level whose column it reaches
        above = earlier.path
        closed = next(
            (
                above[:depth]
                for depth in range(len(above), 0, -1)
                if above[:depth] in self.by_path and self.by_path[above[:depth]].col <= comment.col
            ),
            above[:1],
        )
        owned.after.setdefault(closed, []).append(comment.text)


def _walk(node: Any, path: Path, lines: list[str], line_map: list[int]) -> Iterator[_Node]:
    """Every key and list item below ``node`` in document order, at its original line."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        for key, value in node.items():
            line, col = node.lc.key(key)
            yield _Node(path + (key,), line_map[line], col)
            yield from _walk(value, path + (key,), lines, line_map)
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            yield _Node(path + (index,), line_map[line], _dash(lines[line], col))
            yield from _walk(value, path + (index,), lines, line_map)


def _dash(line: str, col: int) -> int:
    """The column of the ``-`` of a block list item whose value starts at ``col``."""
    at = len(line[:col].rstrip(" "))
    return at - 1 if at and line[at - 1] == "-" else col


def restore_comments(text: str, owned: DocumentComments) -> str:
    """``text`` (one document as ruamel wrote it, without comments) with its comments put
    back where ``owned`` says they belong."""
    if not owned:
        return text
    from ruamel.yaml import YAML

    lines = text.split("\n")
    identity = list(range(len(lines)))
    nodes = list(_walk(YAML(typ="rt").load(text), (), lines, identity))
    where = {n.path: i for i, n in enumerate(nodes)}
    # (line to insert before, rank, depth, order, text): a document's header first; then
    # what closes the blocks above a line (deeper ones first); then what comes before it
    # (an item's before its first key's)
    inserts: list[tuple[int, int, int, int, str]] = [
        (0, 0, 0, i, line) for i, line in enumerate(owned.header)
    ]
    for path, texts in owned.before.items():
        node = nodes[where[path]]
        indent = node.col if not lines[node.line][: node.col].strip() else _indent(lines[node.line])
        inserts += [(node.line, 2, len(path), i, " " * indent + c) for i, c in enumerate(texts)]
    for path, texts in owned.after.items():
        node = nodes[where[path]]
        following = next(
            (n.line for n in nodes[where[path] + 1 :] if n.path[: len(path)] != path),
            len(lines) - 1 if lines[-1] == "" else len(lines),
        )
        end = max(following, node.line + 1)
        while end - 1 > node.line and not lines[end - 1].strip():
            end -= 1
        inserts += [(end, 1, -len(path), i, " " * node.col + c) for i, c in enumerate(texts)]
    for path, pairs in owned.eol.items():
        at = nodes[where[path]].line
        lines[at] += "".join(gap + comment for gap, comment in pairs)
    out: list[str] = []
    inserts.sort()
    pending = 0
    for index, line in enumerate(lines):
        while pending < len(inserts) and inserts[pending][0] <= index:
            out.append(inserts[pending][-1])
            pending += 1
        out.append(line)
    out.extend(insert[-1] for insert in inserts[pending:])
    if owned.trailer:
        while out and not out[-1].strip():
            out.pop()
        out += [*owned.trailer, ""]
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
