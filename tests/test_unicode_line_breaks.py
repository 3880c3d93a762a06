"""A Unicode line break (U+0085, U+2028, U+2029) in a manifest is an error at its place.

YAML's readers (PyYAML, ruamel) take these characters as line breaks; no editor shows one,
and they arrive unseen in a prompt pasted from a web page or a document. So ``validate``
said ``9:1: invalid YAML`` of a seven-line file (a separator inside a block ``system:``),
``3:1: unknown field 'model'`` of a comment's tail on line 2, and read ``"a<U+0085>b"`` as
``"a b"`` without a word. Each is now an error at the line and column an editor shows,
naming the character and what to write instead; ``plan`` and ``fmt`` say the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, out_of_band

HEAD = "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()
    return tmp_path / "manifests" / "agent.yaml"


@pytest.mark.parametrize(
    ("text", "where", "character"),
    [
        (HEAD + "  system: |\n    Be brief.\u2028Be kind.\n    Bye.\n", "6:14", "U+2028"),
        (HEAD + '  system: "a\x85b"\n', "5:13", "U+0085"),
        ("kind: Agent\nname: coder  # note\u2029model: x\nspec: {model: m}\n", "2:20", "U+2029"),
        (HEAD.replace("\n", "\r\n") + '  system: "a\u2028b"\r\n', "5:13", "U+2028"),
    ],
    ids=["block-scalar", "quoted", "comment", "crlf"],
)
def test_a_unicode_line_break_is_an_error_where_an_editor_shows_it(
    manifest: Path, text: str, where: str, character: str
) -> None:
    manifest.write_text(text, encoding="utf-8", newline="")
    for command in (["validate"], ["plan"], ["fmt", "--check"], ["fmt"]):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.output)
        assert f"manifests/agent.yaml:{where}: a Unicode line break character ({character}" in (
            result.stderr
        ), (command, result.stderr)
    assert manifest.read_bytes() == text.encode()
    assert not Path(".reconciler").exists()


def test_import_writes_a_unicode_line_break_escaped_so_its_manifest_validates(
    manifest: Path,
) -> None:
    async def create(client: Any) -> Any:
        return await client.agents.create(
            {"name": "pasted", "model": "claude-sonnet-4-6", "system": "Be brief.\u2028Be kind."}
        )

    agent = out_of_band(create)
    imported = cli("import", "agent.pasted", agent["id"])
    assert imported.exit_code == 0, imported.output
    written = Path("manifests/agents/pasted.yaml").read_text(encoding="utf-8")
    assert "\u2028" not in written and '"Be brief.\\LBe kind."' in written
    assert cli("validate").exit_code == 0
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
