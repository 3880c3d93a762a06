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


def test_a_documents_positions_take_a_few_bytes_a_path() -> None:
    """Documents of one shape share their path order, each keeping two machine words a path
    (~37 bytes with the array and the object around them at this size), not a dict
    and an int object of its own (~85): 10,000 manifests hold ~100,000
    positions until the plan is made."""
    import tracemalloc

    agent = "kind: Agent\nname: a{i}\nspec:\n  model: m\n  system: s\n  tools: [{{type: t}}]\n"
    text = "---\n".join(agent.format(i=i) for i in range(2_000))
    docs, _ = parse_documents(text)  # paths and layouts are shared from here on
    tracemalloc.start()
    try:
        docs, _ = parse_documents(text)
        before = tracemalloc.get_traced_memory()[0]
        for doc in docs:  # only the positions go
            object.__setattr__(doc, "positions", None)
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    paths = 2_000 * 8  # kind name spec spec.model spec.system spec.tools tools.0 tools.0.type
    assert freed / paths < 50, f"{freed / paths:.0f} bytes a path"
