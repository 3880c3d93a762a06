"""``state history`` says what happened to each address: created at the provider, found
again by its ownership tags (healed), imported, moved, replaced; not "created" for every
entry that was new in the state (embedded provider, driven through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import LOCKFILE, cli, make_workdir, ok, out_of_band, remote_id

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _changes(*args: str) -> list[tuple[str, str, str]]:
    lines = ok("state", "history", "--json", *args).stdout.splitlines()
    return [
        (r["operation"], c["address"], c["change"])
        for r in map(json.loads, lines)
        for c in r["changes"]
    ]


def test_history_says_healed_not_created_of_what_a_lost_lockfile_found_again(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    assert ("apply", "agent.coder", "created") in _changes()
    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink(missing_ok=True)
    ok("apply", "--auto-approve")  # nothing is created: all found by its ownership tags

    after = _changes("agent.coder")
    assert after == [("apply", "agent.coder", "created"), ("apply", "agent.coder", "healed")]
    text = ok("state", "history", "agent.coder").stdout
    assert "    healed   agent.coder agent_" in text
    assert text.count("created") == 1


def test_history_says_imported_and_moved(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agent = out_of_band(
        lambda c: c.agents.create({"name": "byhand", "model": "claude-sonnet-4-6"})
    )
    ok("import", "agent.byhand", agent["id"])
    assert _changes("agent.byhand")[-1] == ("import", "agent.byhand", "imported")

    ok("state", "mv", "agent.byhand", "agent.by-hand")
    last = json.loads(ok("state", "history", "--json").stdout.splitlines()[-1])
    assert last["operation"] == "state mv"
    assert [(c["address"], c["change"], c.get("moved_from")) for c in last["changes"]] == [
        ("agent.by-hand", "moved", "agent.byhand"),
        ("agent.byhand", "removed", None),
    ]
    text = ok("state", "history", "agent.by-hand").stdout
    assert f"    moved    agent.by-hand {agent['id']} v2 (from agent.byhand)" in text

    # every word is documented
    doc = (REPO / "docs/json-format.md").read_text()
    section = doc[doc.index("## State history lines (`state history --json`)") :]
    for word in ("created", "updated", "removed", "healed", "imported", "moved", "replaced"):
        assert f"`{word}`" in section, word
    assert "`moved_from`" in section


def test_the_history_of_an_address_moved_away_says_where_it_went(workdir: Path) -> None:
    # `state history agent.coder` after `state mv agent.coder agent.writer` said only
    # "removed  agent.coder": the move that took its entry elsewhere was left out
    ok("apply", "--auto-approve")
    ok("state", "mv", "agent.coder", "agent.writer")
    assert _changes("agent.coder")[-2:] == [
        ("state mv", "agent.coder", "removed"),
        ("state mv", "agent.writer", "moved"),
    ]
    text = ok("state", "history", "agent.coder").stdout
    assert "    moved    agent.writer agent_" in text and "(from agent.coder)" in text


def test_history_says_replaced_of_a_credential_created_in_place_of_the_recorded_one(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    vaults = Path("manifests/vaults.yaml")
    vaults.write_text(
        vaults.read_text().replace("githubcopilot.com/mcp/", "githubcopilot.com/mcp2/")
    )
    assert "1 replaced" in ok("apply", "--auto-approve").stdout
    credential = "vault.github.credential.github-mcp"
    assert [w for _, _, w in _changes(credential)] == ["created", "replaced"]


def test_history_says_replaced_of_an_object_archived_behind_gits_back_and_created_again(
    workdir: Path,
) -> None:
    # docs/json-format.md: `replaced` is "apply created a new object in place of the recorded
    # one"; an environment archived in the console and created again by apply is that
    ok("apply", "--auto-approve")
    old = remote_id("environment.python-data")
    out_of_band(lambda c: c.environments.archive(old))
    ok("apply", "--auto-approve")
    new = remote_id("environment.python-data")
    assert new != old
    assert [w for _, _, w in _changes("environment.python-data")] == ["created", "replaced"]
    text = ok("state", "history", "environment.python-data").stdout
    assert f"    replaced environment.python-data {new}" in text


def test_history_of_another_projects_lockfile_is_refused_as_state_list_refuses_it(
    workdir: Path,
) -> None:
    # `--project web state history` in a checkout of project default showed default's
    # history as if it were web's; every other command refuses that lockfile
    ok("apply", "--auto-approve")
    for command in (("state", "list"), ("state", "history"), ("state", "history", "agent.coder")):
        result = cli("--project", "web", *command)
        assert result.exit_code == 1, (command, result.stdout)
        assert "belongs to project 'default', not 'web'" in result.stderr, result.stderr
        assert result.stdout == ""


def test_history_without_a_lockfile_says_it_does_not_exist_as_state_list_does(
    workdir: Path,
) -> None:
    # "state/reconciler.lock has no history." read as if the file were there (a wrong
    # --lockfile, or a checkout never applied)
    for command in (("state", "list"), ("state", "history"), ("state", "history", "agent.coder")):
        result = ok(*command)
        assert "state/reconciler.lock does not exist" in result.stderr, (command, result.stderr)
        assert "check --lockfile" in result.stderr
