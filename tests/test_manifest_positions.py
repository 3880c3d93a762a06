"""Source positions are stored packed (memory of big projects) and read back exactly."""

from __future__ import annotations

from reconciler.manifest.yamlsource import Position, Positions, parse_documents


def test_positions_read_back_as_written() -> None:
    text = "kind: Agent\nspec:\n  model:\n\n\n    claude\n  tools: [a, {b: 1}]\n"
    (doc,), issues = parse_documents(text)
    assert not issues
    positions = doc.positions
    assert isinstance(positions, Positions)
    assert positions[("kind",)] == Position(1, 1, 1, 7)
    assert positions[("spec", "model")] == Position(3, 3, 6, 5)  # the value 3 lines below
    assert positions[("spec", "tools", 1)] == Position(7, 14, 7, 14)
    assert positions[("spec", "tools", 1, "b")] == Position(7, 15, 7, 18)
    assert ("spec", "nope") not in positions and positions.get(("spec", "nope")) is None
    assert len(positions) == len(list(positions)) == 7


def test_positions_beyond_what_packs_are_kept_whole() -> None:
    far = 2**20 + 5  # a column past the packed width
    text = "a: " + "x" * far + "\nb: {" + " " * far + "c: 1}\n"
    (doc,), issues = parse_documents(text)
    assert not issues
    assert doc.positions[("b", "c")] == Position(2, far + 5, 2, far + 8)
    assert doc.positions[("a",)] == Position(1, 1, 1, 4)


def test_equal_paths_are_one_object_across_documents() -> None:
    docs, _ = parse_documents("spec: {model: a}\n---\nspec: {model: b}\n")
    first, second = (next(p for p in d.positions if p == ("spec", "model")) for d in docs)
    assert first is second
