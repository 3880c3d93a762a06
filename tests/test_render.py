"""Rendering plans and drift reports: what a reviewer reads at 2 a.m., and what CI parses.

Plans and drift reports are built by hand (the renderers read data, they do not plan), then
rendered as text, JSON and Markdown. Data assertions check the properties that matter; golden
files under tests/golden/ pin the exact output (refresh with ``pytest --update-golden``).
"""

from __future__ import annotations

import ast
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from support.golden import Golden

from reconciler.engine.model import (
    Archive,
    BlastRadius,
    Conflict,
    Create,
    Delete,
    DriftItem,
    DriftReport,
    FieldChange,
    Impact,
    NoOp,
    Note,
    PinMove,
    Plan,
    PolicyWarning,
    Replace,
    Target,
    Twin,
    Update,
)
from reconciler.render import (
    FORMAT_VERSION,
    GITHUB_COMMENT_LIMIT,
    drift_to_json,
    plan_to_json,
    render_apply_summary,
    render_drift,
    render_plan,
    should_color,
)

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[")

SYSTEM_OLD = (
    "You are a careful code reviewer.\n"
    "Review diffs for bugs.\n"
    "\n"
    "Be concise.\n"
    "Never approve your own changes.\n"
)
SYSTEM_NEW = SYSTEM_OLD.replace("for bugs.", "for bugs and security issues.")
TARGET = Target(spec_digest="sha256:0123")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(request.config)


# --- the plans and reports under test ------------------------------------------------------


def full_plan() -> Plan:
    """One of every action type, a secret, a system prompt diff, pins, blast radius, notes."""
    return Plan(
        project="default",
        lineage="2f4c",
        serial=7,
        prune=True,
        actions=(
            Update(
                address="agent.reviewer",
                kind="agent",
                reason="model, system prompt and tools differ from the manifest",
                remote_id="agent_01REV",
                from_version=3,
                to_version=4,
                labels=("model", "system prompt", "tools", "risky"),
                changes=(
                    FieldChange(
                        op="change",
                        path="model.id",
                        old="claude-sonnet-4-5",
                        new="claude-sonnet-4-6",
                    ),
                    FieldChange(op="change", path="system", old=SYSTEM_OLD, new=SYSTEM_NEW),
                    FieldChange(
                        op="add",
                        path="tools[1]",
                        new={"type": "mcp_toolset", "mcp_server_name": "github"},
                    ),
                    FieldChange(op="change", path="description", old="a" * 70, new="b" * 70),
                ),
                body={"model": "claude-sonnet-4-6"},
                target=TARGET,
            ),
            Create(
                address="agent.coder",
                kind="agent",
                reason="not in the lockfile and no owned resource found",
                body={
                    "name": "coder",
                    "model": "claude-sonnet-4-6",
                    "system": "You write code.\nYou run the tests first.",
                    "tools": [{"type": "agent_toolset_20260401"}],
                },
                target=TARGET,
            ),
            Create(
                address="deployment.nightly-2",
                kind="deployment",
                reason="not in the lockfile and no owned resource found",
                depends_on=("agent.coder", "environment.python-data"),
                body={
                    "name": "nightly-2",
                    "agent": {"$pin": "agent.coder", "version": None},
                    "environment_id": {"$ref": "environment.python-data"},
                },
                target=TARGET,
            ),
            Create(
                address="vault.github.credential.pat",
                kind="credential",
                reason="not in the lockfile and no owned resource found",
                parent="vault.github",
                body={
                    "display_name": "pat",
                    "auth": {
                        "type": "static_bearer",
                        "mcp_server_url": "https://mcp.example/github",
                        "token": {"$secret": "auth.token"},
                    },
                },
                target=TARGET,
            ),
            Replace(
                address="vault.github.credential.gh",
                kind="credential",
                reason="auth.mcp_server_url cannot change in place",
                remote_id="vcrd_01GH",
                changes=(
                    FieldChange(
                        op="change",
                        path="auth.mcp_server_url",
                        old="https://old.example/mcp",
                        new="https://new.example/mcp",
                    ),
                    FieldChange(op="change", path="auth.access_token", sensitive=True),
                    FieldChange(op="add", path="auth.refresh.refresh_token", sensitive=True),
                ),
                body={},
                target=TARGET,
            ),
            Update(
                address="environment.python-data",
                kind="environment",
                reason="metadata differs from the manifest",
                remote_id="env_01PY",
                labels=("metadata",),
                changes=(FieldChange(op="remove", path="metadata.team", old="data"),),
                body={"metadata": {"team": None}},
                target=TARGET,
            ),
            Update(
                address="deployment.nightly",
                kind="deployment",
                reason="it follows the latest version of agent.reviewer, which will be version 4",
                remote_id="dep_01NI",
                changes=(FieldChange(op="change", path="agent.version", old=3, new=4),),
                body={"agent": {"$pin": "agent.reviewer", "version": None}},
                target=TARGET,
            ),
            Archive(
                address="environment.old",
                kind="environment",
                reason="removed from the manifests (--prune)",
                remote_id="env_01OLD",
            ),
            Delete(
                address="vault.scratch",
                kind="vault",
                reason="removed from the manifests (--prune)",
                remote_id="vlt_01SCR",
            ),
            NoOp(
                address="agent.planner",
                kind="agent",
                reason="matches the manifest",
                remote_id="agent_01PLN",
                version=2,
            ),
            NoOp(
                address="deployment.weekly",
                kind="deployment",
                reason="matches the manifest",
                remote_id="dep_01WK",
            ),
        ),
        pin_moves=(
            PinMove(
                deployment="deployment.nightly",
                agent="agent.reviewer",
                old=3,
                new=4,
                follows_latest=True,
            ),
            PinMove(
                deployment="deployment.canary",
                agent="agent.coder",
                old=None,
                new=None,
                follows_latest=True,
            ),
        ),
        blast_radius=(
            BlastRadius(
                address="agent.reviewer",
                deployments=(
                    Impact(deployment="deployment.weekly", follows_latest=False, pinned_version=3),
                    Impact(deployment="deployment.nightly", follows_latest=True),
                ),
            ),
            BlastRadius(address="environment.old", deployments=()),
        ),
        notes=(
            Note(
                address="environment.legacy",
                kind="environment",
                remote_id="env_01LEG",
                message="not in the manifests; left alone. Run with --prune to archive it",
            ),
        ),
    )


def left_alone_plan() -> Plan:
    """Nothing to do, but something the plan did not prune."""
    return Plan(
        actions=(
            NoOp(address="agent.coder", kind="agent", reason="matches", remote_id="agent_01"),
        ),
        notes=full_plan().notes,
    )


def twins_plan() -> Plan:
    """Issue 11: nothing to send, but a twin and a lockfile entry that is not ours."""
    return Plan(
        actions=(
            NoOp(address="agent.coder", kind="agent", reason="matches", remote_id="agent_01"),
        ),
        twins=(
            Twin(
                address="agent.coder",
                kind="agent",
                remote_id="agent_02TW",
                kept_id="agent_01",
                message="agent_02TW also claims agent.coder; `reconciler apply --prune` "
                "archives agent_02TW",
            ),
        ),
        conflicts=(
            Conflict(
                address="agent.legacy",
                kind="agent",
                remote_id="agent_03WEB",
                owner='project "web" (as agent.legacy)',
                message="the lockfile records agent agent_03WEB for agent.legacy, but it belongs "
                'to project "web" (as agent.legacy); `reconciler state rm agent.legacy`',
            ),
        ),
    )


def twins_drift() -> DriftReport:
    return DriftReport(
        items=(
            DriftItem(
                type="twin",
                address="agent.coder",
                kind="agent",
                remote_id="agent_02TW",
                remote_name="coder",
                message="a twin: tagged agent.coder by this project, but agent_01 holds that "
                "address; `reconciler apply --prune` archives this one",
            ),
        )
    )


def test_twins_and_conflicts_never_read_as_no_changes() -> None:
    plan = twins_plan()
    assert plan.has_changes and not plan.changes
    for fmt in ("text", "markdown"):
        out = render_plan(plan, fmt)  # type: ignore[arg-type]
        assert "No changes" not in out
        assert "agent_02TW" in out and "apply --prune" in out
        assert "agent_03WEB" in out and "state rm agent.legacy" in out
    doc = json.loads(render_plan(plan, "json"))
    assert doc["has_changes"] is True
    assert [t["remote_id"] for t in doc["twins"]] == ["agent_02TW"]
    assert doc["twins"][0]["kept_id"] == "agent_01"
    assert [c["owner"] for c in doc["conflicts"]] == ['project "web" (as agent.legacy)']
    drift = render_drift(twins_drift(), "text")
    assert "agent.coder  twin" in drift and "1 twin" in drift
    assert json.loads(render_drift(twins_drift(), "json"))["summary"]["twin"] == 1
    assert "| Twin |" in render_drift(twins_drift(), "markdown")


def full_drift() -> DriftReport:
    return DriftReport(
        items=(
            DriftItem(
                type="unmanaged",
                address=None,
                kind="agent",
                remote_id="agent_01CLK",
                remote_name="clicked",
                message="live, but no manifest of this project owns it; `reconciler import` "
                "adopts it",
            ),
            DriftItem(
                type="changed",
                address="agent.coder",
                kind="agent",
                remote_id="agent_01COD",
                message="edited outside git; `reconciler apply` restores the manifest",
                version=7,
                changed_at="2026-11-20T10:00:00Z",
                changes=(
                    FieldChange(
                        op="change", path="model.id", old="claude-sonnet-4-6", new="claude-opus-4-1"
                    ),
                    FieldChange(op="change", path="system", old=SYSTEM_OLD, new=SYSTEM_NEW),
                ),
            ),
            DriftItem(
                type="archived",
                address="environment.python-data",
                kind="environment",
                remote_id="env_01PY",
                message="`reconciler apply` creates it again",
            ),
            DriftItem(
                type="deleted",
                address="vault.github",
                kind="vault",
                remote_id="vlt_01GH",
                message="`reconciler apply` creates it again",
            ),
            DriftItem(
                type="pin",
                address="deployment.nightly",
                kind="deployment",
                remote_id="dep_01N",
                message="runs agent.reviewer@2, the lockfile pinned @3",
            ),
            DriftItem(
                type="paused",
                address="deployment.nightly",
                kind="deployment",
                remote_id="dep_01N",
                message="paused by hand (the Console or the API); its schedule does not fire, "
                "and `reconciler apply` leaves it paused: unpause it in the Console or with the "
                "API (POST /v1/deployments/dep_01N/unpause)",
                changes=(FieldChange(op="change", path="status", old="active", new="paused"),),
            ),
            DriftItem(
                type="unmanaged",
                address=None,
                kind="environment",
                remote_id="env_01TMP",
                remote_name="scratch",
                message="live, but no manifest of this project owns it",
            ),
        )
    )


def moves_plan() -> Plan:
    """A rename (moved_from) planned as an update in place, a move whose retag is done (only
    the lockfile entry moves), and an advisory policy warning."""
    return Plan(
        actions=(
            Update(
                address="agent.engineer",
                kind="agent",
                reason="moved from agent.coder: the same object, renamed and retagged in place "
                "(nothing archived or created)",
                remote_id="agent_01COD",
                from_version=3,
                to_version=4,
                labels=("metadata", "name"),
                changes=(
                    FieldChange(
                        op="change",
                        path="metadata.reconciler-address",
                        old="agent.coder",
                        new="agent.engineer",
                    ),
                    FieldChange(op="change", path="name", old="coder", new="engineer"),
                ),
                body={"name": "engineer"},
                target=TARGET,
                moved_from="agent.coder",
            ),
            NoOp(
                address="vault.keys",
                kind="vault",
                reason="moved from vault.secrets: the object already carries its new address "
                "(a move whose lockfile write was lost); apply moves the lockfile entry",
                remote_id="vlt_01KEY",
                target=TARGET,
                moved_from="vault.secrets",
            ),
        ),
        policy_warnings=(
            PolicyWarning(
                address="deployment.nightly",
                location="manifests/deployments.yaml:4:1",
                policy="rollout-gate",
                rule="rule 'rollout-checks'",
                message="the deployment has no rollout check",
            ),
        ),
    )


def test_a_move_reads_as_old_to_new_address_in_every_format() -> None:
    text = render_plan(moves_plan(), "text")
    assert "  ~ agent.coder -> agent.engineer  moved  version 3 -> 4  [metadata, name]" in text
    assert "  ~ vault.secrets -> vault.keys  moved  (lockfile only)" in text
    assert text.rstrip().endswith("Plan: 0 to create, 1 to update, 0 to archive, 2 moved.")
    doc = json.loads(render_plan(moves_plan(), "json"))
    assert {a["address"]: a["moved_from"] for a in doc["actions"]} == {
        "agent.engineer": "agent.coder",
        "vault.keys": "vault.secrets",
    }
    assert doc["policy_warnings"][0]["policy"] == "rollout-gate"
    markdown = render_plan(moves_plan(), "markdown")
    assert "`agent.coder -> agent.engineer`" in markdown
    assert "#### Policy warnings" in markdown


# --- golden files --------------------------------------------------------------------------

SAMPLES = {
    "plan_full": full_plan,
    "plan_empty": Plan,
    "plan_left_alone": left_alone_plan,
    "plan_twins": twins_plan,
    "plan_moves": moves_plan,
}
DRIFT_SAMPLES = {"drift_full": full_drift, "drift_none": DriftReport, "drift_twins": twins_drift}
SUFFIX = {"text": "txt", "json": "json", "markdown": "md"}


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_plan_matches_golden(golden: Golden, name: str, fmt: Any) -> None:
    golden.check(f"{name}.{SUFFIX[fmt]}", render_plan(SAMPLES[name](), fmt))


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
@pytest.mark.parametrize("name", sorted(DRIFT_SAMPLES))
def test_drift_matches_golden(golden: Golden, name: str, fmt: Any) -> None:
    golden.check(f"{name}.{SUFFIX[fmt]}", render_drift(DRIFT_SAMPLES[name](), fmt))


def test_colour_output_matches_golden(golden: Golden) -> None:
    golden.check("plan_full.ansi", render_plan(full_plan(), "text", color=True))
    golden.check("drift_full.ansi", render_drift(full_drift(), "text", color=True))


def test_apply_summary_matches_golden(golden: Golden) -> None:
    done = render_apply_summary({"create": 2, "update": 1, "archive": 0, "noop": 5}, {})
    failed = render_apply_summary(
        {"create": 2, "update": 1},
        {"agent.reviewer": "the agent changed since the plan\n(version 5, expected 4)"},
    )
    golden.check("apply_summary.txt", done + "\n---\n" + failed + "\n")


def test_missing_golden_file_fails_with_a_hint(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    checker = Golden(request.config, directory=tmp_path)
    if checker.update:
        pytest.skip("--update-golden writes instead of comparing")
    with pytest.raises(pytest.fail.Exception, match="--update-golden"):
        checker.check("nothing-here.txt", "output\n")


# --- text ----------------------------------------------------------------------------------


def test_text_lists_each_change_once_sorted_and_ends_with_the_summary() -> None:
    plan = full_plan()
    out = render_plan(plan, "text")
    headlines = re.findall(r"^(?:  [+~-]|-/\+) (\S+)  (\w+)", out, flags=re.MULTILINE)
    addresses = [a for a, verb in headlines if verb != "pin"]
    assert addresses == sorted(a.address for a in plan.changes)
    assert "agent.planner" not in out  # no-ops are counted, not listed
    assert "2 unchanged resources are not shown." in out
    assert out.endswith(
        "\nPlan: 3 to create, 3 to update, 1 to replace, 1 to archive, 1 to delete.\n"
    )


def test_text_agent_update_names_versions_and_labels() -> None:
    out = render_plan(full_plan(), "text")
    assert "  ~ agent.reviewer  update  version 3 -> 4  [model, system prompt, tools]\n" in out
    assert "risky: tools change what this agent can do or reach" in out
    assert '~ model.id: "claude-sonnet-4-5" -> "claude-sonnet-4-6"' in out
    assert "[metadata only]" in out


def test_text_system_prompt_is_a_unified_diff() -> None:
    out = render_plan(full_plan(), "text")
    expected = (
        "      ~ system:\n"
        "          --- live\n"
        "          +++ manifest\n"
        "          @@ -1,5 +1,5 @@\n"
        "           You are a careful code reviewer.\n"
        "          -Review diffs for bugs.\n"
        "          +Review diffs for bugs and security issues.\n"
    )
    assert expected in out


def test_text_shows_secrets_and_placeholders_never_their_values() -> None:
    out = render_plan(full_plan(), "text")
    assert "~ auth.access_token: (sensitive) -> (sensitive)" in out
    assert "+ auth.refresh.refresh_token: (sensitive)" in out
    assert '"token": (sensitive)' in out
    assert "auth.token" not in out  # the secret's path in the spec is not shown either
    assert "+ agent: agent.coder@latest" in out
    assert "+ environment_id: (ref environment.python-data)" in out


def test_text_pin_move_is_shown_once_with_its_update() -> None:
    out = render_plan(full_plan(), "text")
    assert out.count("~ deployment.nightly  ") == 1
    assert (
        "  ~ deployment.nightly  update  pin agent.reviewer@3 -> @4  (follows latest)\n"
        "      reason: it follows the latest version of agent.reviewer, which will be version 4\n"
        "\n"
    ) in out
    assert "agent.version" not in out
    assert (
        "  ~ deployment.canary  pin  agent.coder@none -> @latest  "
        "(follows latest; the number is resolved at apply)\n"
    ) in out


def test_text_blast_radius_says_who_is_affected_now_and_who_later() -> None:
    out = render_plan(full_plan(), "text")
    assert (
        "Blast radius:\n"
        "  agent.reviewer (update) is used by 2 deployments:\n"
        "    deployment.nightly  follows latest: affected by this apply\n"
        "    deployment.weekly   pinned to version 3: not affected yet\n"
        "  environment.old (archive) is used by no deployment.\n"
    ) in out


def test_text_says_what_it_left_alone_and_how_to_prune_it() -> None:
    out = render_plan(left_alone_plan(), "text")
    assert out.startswith(
        "No changes. Apply would change nothing, but 1 resource is left alone, as shown below.\n"
    )
    assert (
        "Left alone:\n  environment.legacy (env_01LEG): not in the manifests; left alone. "
        "Run with --prune to archive it\n"
    ) in out


def test_empty_plan_says_no_changes() -> None:
    assert render_plan(Plan(), "text") == "No changes. The live system matches the manifests.\n"


def test_no_changes_names_held_candidates_and_resources_left_alone_together() -> None:
    from reconciler.engine.gate import HeldCandidate

    held = HeldCandidate(
        deployment="deployment.d",
        agent="agent.a",
        version=2,
        reason="checks",
        held_at="2026-12-06T10:00:00Z",
        failed=1,
        total=1,
        stays_at=1,
    )
    note = Note(address="environment.old", kind="environment", message="not in the manifests")
    both = render_plan(Plan(held=(held,), notes=(note,)), "text")
    assert both.startswith(
        "No changes. Apply would change nothing: 1 held candidate keeps its deployment where it "
        "is, and 1 resource is left alone, as shown below."
    ), both
    only_held = render_plan(Plan(held=(held,)), "text")
    assert only_held.startswith(
        "No changes. Apply would change nothing: 1 held candidate keeps its deployment where it "
        "is, as shown below."
    ), only_held
    only_left = render_plan(Plan(notes=(note, note)), "text")
    assert only_left.startswith(
        "No changes. Apply would change nothing, but 1 resource is left alone, as shown below."
    ), only_left


def test_text_has_no_escape_codes_without_colour_and_some_with_it() -> None:
    plain = render_plan(full_plan(), "text", color=False)
    coloured = render_plan(full_plan(), "text", color=True)
    assert not ANSI.search(plain) and "\x1b" not in plain
    assert ANSI.search(coloured)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_colour_is_independent_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render_plan(full_plan(), "text", color=True)
    for var, value in {
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "20",
        "FORCE_COLOR": "1",
    }.items():
        monkeypatch.setenv(var, value)
    assert render_plan(full_plan(), "text", color=True) == expected
    assert not ANSI.search(render_plan(full_plan(), "text", color=False))


def test_live_values_cannot_inject_terminal_escapes() -> None:
    evil = "\x1b[2J\x1b]0;pwned\x07"
    plan = Plan(
        actions=(
            Update(
                address="agent.a",
                kind="agent",
                reason="x",
                remote_id="agent_01",
                changes=(
                    FieldChange(op="change", path="name", old=evil, new="a"),
                    FieldChange(op="change", path="system", old=f"one\n{evil}\n", new="one\ntwo\n"),
                ),
                body={},
                target=TARGET,
            ),
        )
    )
    report = DriftReport(
        items=(
            DriftItem(type="unmanaged", address=None, kind="agent", remote_name=evil, message=evil),
        )
    )
    for out in (render_plan(plan, "text"), render_drift(report, "text")):
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b[2J" in out or "\\u001b[2J" in out


def test_long_values_are_shortened_and_wide_changes_split() -> None:
    long = "x" * 500
    plan = Plan(
        actions=(
            Update(
                address="agent.a",
                kind="agent",
                reason="x",
                remote_id="agent_01",
                changes=(FieldChange(op="change", path="description", old=long, new="short"),),
                body={},
                target=TARGET,
            ),
        )
    )
    out = render_plan(plan, "text", width=100)
    assert "      ~ description:\n" in out
    old_line = next(line for line in out.splitlines() if line.startswith("          - "))
    assert old_line.endswith("…") and len(old_line) == 12 + 200
    assert '          + "short"\n' in out
    # a wider terminal keeps the change on one line
    assert "~ description: " in render_plan(plan, "text", width=1000)


def test_render_is_byte_stable_whatever_the_input_order() -> None:
    plan = full_plan()
    shuffled = list(plan.actions)
    random.Random(4).shuffle(shuffled)
    other = plan.model_copy(
        update={
            "actions": tuple(shuffled),
            "blast_radius": plan.blast_radius[::-1],
            "pin_moves": plan.pin_moves[::-1],
        }
    )
    for fmt in ("text", "json", "markdown"):
        assert render_plan(other, fmt) == render_plan(plan, fmt)


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="text, json, markdown"):
        render_plan(Plan(), "yaml")  # type: ignore[arg-type]


# --- should_color --------------------------------------------------------------------------


class FakeStream:
    def __init__(self, tty: bool | None) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        if self.tty is None:
            raise ValueError("I/O operation on closed file")
        return self.tty


@pytest.mark.parametrize(
    ("tty", "environ", "expected"),
    [
        (True, {}, True),
        (True, {"NO_COLOR": ""}, True),
        (True, {"TERM": "xterm-256color"}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": "0"}, False),
        (True, {"TERM": "dumb"}, False),
        (None, {}, False),
    ],
)
def test_should_color(tty: bool | None, environ: dict[str, str], expected: bool) -> None:
    assert should_color(FakeStream(tty), environ) is expected


def test_should_color_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert should_color(FakeStream(True)) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert should_color(FakeStream(True)) is False
    assert should_color(object()) is False


# --- JSON ----------------------------------------------------------------------------------

ACTION_KEYS = {
    "type", "address", "kind", "reason", "remote_id", "changes",
    "from_version", "to_version", "labels", "moved_from",
}  # fmt: skip
CHANGE_KEYS = {"op", "path", "old", "new", "sensitive"}


def test_plan_json_is_the_documented_schema() -> None:
    plan = full_plan()
    doc = json.loads(render_plan(plan, "json"))
    assert doc == plan_to_json(plan)
    assert doc["format_version"] == FORMAT_VERSION == 1
    assert doc["kind"] == "plan"
    assert doc["has_changes"] is True
    assert doc["summary"] == plan.summary.model_dump()
    assert [a["address"] for a in doc["actions"]] == sorted(a.address for a in plan.actions)
    for action in doc["actions"]:
        assert set(action) == ACTION_KEYS
        for change in action["changes"]:
            assert set(change) == CHANGE_KEYS
    reviewer = next(a for a in doc["actions"] if a["address"] == "agent.reviewer")
    assert (reviewer["from_version"], reviewer["to_version"]) == (3, 4)
    assert reviewer["changes"][1]["new"] == SYSTEM_NEW  # complete, never truncated
    assert [m["deployment"] for m in doc["pin_moves"]] == [
        "deployment.canary",
        "deployment.nightly",
    ]
    assert doc["pin_moves"][1] == {
        "agent": "agent.reviewer",
        "checks": 0,
        "deployment": "deployment.nightly",
        "follows_latest": True,
        "gate": None,
        "new": 4,
        "old": 3,
    }
    assert doc["blast_radius"][0]["deployments"][0]["deployment"] == "deployment.nightly"
    assert doc["notes"][0]["remote_id"] == "env_01LEG"


def test_json_keys_are_sorted_everywhere() -> None:
    def check(value: Any) -> None:
        if isinstance(value, dict):
            assert list(value) == sorted(value)
            for v in value.values():
                check(v)
        elif isinstance(value, list):
            for v in value:
                check(v)

    check(plan_to_json(full_plan()))
    check(drift_to_json(full_drift()))


def test_json_sensitive_values_are_masked() -> None:
    doc = plan_to_json(full_plan())
    gh = next(a for a in doc["actions"] if a["address"] == "vault.github.credential.gh")
    token, refresh = gh["changes"][1], gh["changes"][2]
    assert token == {
        "op": "change",
        "path": "auth.access_token",
        "old": "(sensitive)",
        "new": "(sensitive)",
        "sensitive": True,
    }
    assert (refresh["old"], refresh["new"]) == (None, "(sensitive)")


def test_empty_plan_json_has_no_changes() -> None:
    doc = plan_to_json(Plan())
    assert doc["has_changes"] is False
    assert doc["actions"] == [] and sum(doc["summary"].values()) == 0


def test_drift_json_counts_every_type() -> None:
    report = full_drift()
    doc = json.loads(render_drift(report, "json"))
    assert doc["kind"] == "drift" and doc["format_version"] == 1 and doc["has_drift"] is True
    assert doc["summary"] == {
        "archived": 1,
        "changed": 1,
        "deleted": 1,
        "pin": 1,
        "paused": 1,
        "unmanaged": 2,
        "twin": 0,
    }
    assert len(doc["items"]) == len(report.items)
    coder = next(i for i in doc["items"] if i["address"] == "agent.coder")
    assert (coder["version"], coder["changed_at"]) == (7, "2026-11-20T10:00:00Z")
    assert json.loads(render_drift(DriftReport(), "json"))["has_drift"] is False


def test_every_json_key_is_documented() -> None:
    doc_text = (ROOT / "docs" / "json-format.md").read_text(encoding="utf-8")

    def keys(value: Any) -> set[str]:
        if isinstance(value, dict):
            found = set(value)
            for k, v in value.items():
                if k not in ("new", "old"):  # values of the managed objects themselves
                    found |= keys(v)
            return found
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value)) if value else set()
        return set()

    samples = (full_plan(), twins_plan(), moves_plan(), full_drift(), twins_drift())
    for doc in (plan_to_json(p) if isinstance(p, Plan) else drift_to_json(p) for p in samples):
        missing = sorted(k for k in keys(doc) if not re.search(rf"[`.]{k}`", doc_text))
        assert not missing, f"document these keys in docs/json-format.md: {missing}"
    # the examples are real output: same keys as the renderer writes today
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc_text, re.DOTALL)]
    assert [e["kind"] for e in examples] == ["plan", "drift"]
    assert set(examples[0]) == set(plan_to_json(Plan()))
    assert set(examples[1]) == set(drift_to_json(DriftReport()))


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_puts_the_summary_first_and_details_in_collapsed_sections() -> None:
    plan = full_plan()
    out = render_plan(plan, "markdown")
    assert out.index("| Create | Update |") < out.index("**Plan:**") < out.index("#### Changes")
    assert out.index("#### Changes") < out.index("#### Blast radius") < out.index("<details>")
    assert out.count("<details>") == out.count("</details>") == len(plan.changes)
    assert out.count("```diff") * 2 == out.count("```")
    assert "<summary>agent.reviewer: update (version 3 -&gt; 4)" in out
    assert (
        "\n-     Review diffs for bugs.\n+     Review diffs for bugs and security issues.\n" in out
    )
    assert "**follows latest: affected by this apply**" in out


def _many_actions(n: int) -> Plan:
    prompt = "\n".join(f"line {i} of a long system prompt" for i in range(60))
    return Plan(
        actions=tuple(
            Update(
                address=f"agent.a{i:05d}",
                kind="agent",
                reason="system prompt differs from the manifest",
                remote_id=f"agent_{i:05d}",
                from_version=1,
                to_version=2,
                labels=("system",),
                changes=(
                    FieldChange(
                        op="change", path="system", old=prompt, new=prompt.replace("1", "one")
                    ),
                ),
                body={},
                target=TARGET,
            )
            for i in range(n)
        ),
        blast_radius=tuple(
            BlastRadius(
                address=f"agent.a{i:05d}",
                deployments=(Impact(deployment=f"deployment.d{i:05d}", follows_latest=True),),
            )
            for i in range(n)
        ),
    )


def test_markdown_stays_under_the_github_comment_limit() -> None:
    plan = _many_actions(3000)
    out = render_plan(plan, "markdown")
    assert len(out) <= GITHUB_COMMENT_LIMIT
    assert "| 0 | 3000 | 0 | 0 | 0 | 0 |" in out  # the summary is never cut
    assert "**Plan:** 0 to create, 3000 to update, 0 to archive." in out
    match = re.search(r"… (\d+) more actions omitted \(output truncated to fit a GitHub comment\)"
                      r"; run `reconciler plan --full` for the full plan\.", out)  # fmt: skip
    assert match is not None
    rows = out.count("| `~` | `agent.a")
    assert rows + int(match.group(1)) == 3000
    assert "more blast radius entries omitted" in out
    assert out.count("<details>") == out.count("</details>")
    assert out.count("```") % 2 == 0


def test_markdown_shortens_one_huge_diff() -> None:
    huge = "\n".join(f"{i}: " + "word " * 30 for i in range(3000))
    plan = Plan(
        actions=(
            Update(
                address="agent.big",
                kind="agent",
                reason="system prompt differs",
                remote_id="agent_01",
                changes=(FieldChange(op="change", path="system", old="", new=huge),),
                body={},
                target=TARGET,
            ),
        )
    )
    out = render_plan(plan, "markdown")
    assert len(out) <= GITHUB_COMMENT_LIMIT
    assert "more lines not shown" in out or "more diff lines not shown" in out


def test_drift_markdown_is_bounded_and_counts() -> None:
    report = DriftReport(
        items=tuple(
            DriftItem(
                type="unmanaged",
                address=None,
                kind="agent",
                remote_id=f"agent_{i:05d}",
                remote_name=f"clicked-{i}",
                message="live, but no manifest of this project owns it",
            )
            for i in range(5000)
        )
    )
    out = render_drift(report, "markdown")
    assert len(out) <= GITHUB_COMMENT_LIMIT
    assert "| 0 | 0 | 0 | 0 | 5000 |" in out
    assert "run `reconciler drift --full` for the full report" in out


def test_markdown_tables_escape_pipes() -> None:
    report = DriftReport(
        items=(
            DriftItem(type="unmanaged", address=None, kind="agent", remote_name="a|b", message="m"),
        )
    )
    row = next(line for line in render_drift(report, "markdown").splitlines() if "a\\|b" in line)
    assert row.count(" | ") == 3


# --- drift text ----------------------------------------------------------------------------


def test_drift_text_per_address() -> None:
    out = render_drift(full_drift(), "text")
    assert (
        "  ~ agent.coder  changed out of band  (version 7, 2026-11-20T10:00:00Z)\n"
        "      edited outside git; `reconciler apply` restores the manifest\n"
    ) in out
    assert '~ model.id: "claude-sonnet-4-6" -> "claude-opus-4-1"' in out
    assert "          --- expected\n          +++ live\n" in out
    assert "  ! environment.python-data  archived behind our back\n" in out
    assert "  ! vault.github  deleted behind our back\n" in out
    assert "  ~ deployment.nightly  pin drifted\n" in out
    assert '  ? agent "clicked" (agent_01CLK)  unmanaged\n' in out
    assert out.endswith("\nDrift: 1 changed, 1 archived, 1 deleted, 1 pin, 1 paused, 2 unmanaged.\n")


def test_no_drift() -> None:
    out = render_drift(DriftReport(), "text")
    assert (
        out == "No drift. The live system matches the lockfile: nothing was changed outside git.\n"
    )


# --- apply summary -------------------------------------------------------------------------


def test_apply_summary() -> None:
    assert (
        render_apply_summary({"create": 2, "update": 1}, {})
        == "Apply complete: 2 created, 1 updated, 0 archived."
    )
    assert (
        render_apply_summary({"replace": 1, "delete": 2}, {})
        == "Apply complete: 0 created, 0 updated, 1 replaced, 0 archived, 2 deleted."
    )
    failed = render_apply_summary({"create": 2, "update": 1}, {"agent.x": "409 conflict"})
    assert failed.splitlines() == [
        "Apply failed: 1 of 4 actions failed:",
        "  agent.x: 409 conflict",
        "Done and recorded in the lockfile: 2 created, 1 updated, 0 archived.",
    ]


# --- layering ------------------------------------------------------------------------------


def test_render_imports_only_the_engine_model_and_its_own_libraries() -> None:
    allowed_roots = {"__future__", "rich", "pydantic", "reconciler"}
    allowed_reconciler = ("reconciler.engine.model", "reconciler.render")
    for path in sorted((ROOT / "reconciler" / "render").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root == "reconciler":
                    assert name.startswith(allowed_reconciler), f"{path.name} imports {name}"
                else:
                    assert root in allowed_roots or root in sys.stdlib_module_names, (
                        f"{path.name} imports {name}"
                    )


@pytest.mark.parametrize("odd", ["\x07", "\x08", "\x0b", "\x0c", "\r", "\t", "\x1b", ""])
def test_uncoloured_text_is_what_rich_would_print(odd: str) -> None:
    """Uncoloured text skips rich's console (``text._emit``): its lines read exactly as rich
    prints them, also with the characters rich's ``Text`` drops or rewrites in a piece."""
    from reconciler.render.text import _emit, _rich_emit, _Styled

    lines = [_Styled(f"  a{odd}b  "), _Styled(""), _Styled("x", "bold")]
    lines[2].append(f" {odd}", "red")
    lines[2].append(f"tail{odd}")
    assert _emit(lines, color=False, width=80) == _rich_emit(lines, color=False, width=80)
