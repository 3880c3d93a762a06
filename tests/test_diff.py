"""``diff_objects`` on hand-built data: unordered lists by value, keyed lists by name."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine.diff import changed_fields, diff_objects
from reconciler.engine.model import FieldChange

HOSTS = ("config.networking.allowed_hosts", "config.packages.*")


def env(hosts: list[str], pip: list[str] | None = None) -> dict[str, object]:
    return {
        "config": {
            "networking": {"type": "limited", "allowed_hosts": hosts},
            "packages": {"pip": pip or [], "npm": []},
        }
    }


def test_an_unordered_list_changes_by_value() -> None:
    changes = diff_objects(env(["a.com", "b.com"]), env(["b.com", "c.com"], ["numpy"]), HOSTS)
    assert changes == (
        FieldChange(op="add", path="config.networking.allowed_hosts", new="c.com"),
        FieldChange(op="remove", path="config.networking.allowed_hosts", old="a.com"),
        FieldChange(op="add", path="config.packages.pip", new="numpy"),
    )
    assert changed_fields(changes) == ["config"]


def test_reordering_an_unordered_list_is_no_change() -> None:
    assert diff_objects(env(["a.com", "b.com"]), env(["b.com", "a.com"]), HOSTS) == ()


def test_without_the_hint_a_list_is_compared_by_index() -> None:
    [change] = diff_objects(env(["a.com"]), env(["c.com"]))
    assert change.path == "config.networking.allowed_hosts[0]"


def test_a_list_that_becomes_something_else_is_one_change() -> None:
    live = {"config": {"networking": {"type": "limited", "allowed_hosts": ["a.com"]}}}
    want = {"config": {"networking": {"type": "unrestricted"}}}
    changes = diff_objects(live, want, HOSTS)
    assert {c.path for c in changes} == {
        "config.networking.allowed_hosts",
        "config.networking.type",
    }


def test_keyed_lists_match_items_by_name() -> None:
    live = {"mcp_servers": [{"name": "github", "url": "https://a"}]}
    want = {"mcp_servers": [{"name": "atlassian", "url": "https://j"}, {"name": "github", "url": "https://b"}]}  # fmt: skip
    changes = diff_objects(live, want, keyed={"mcp_servers": "name"})
    assert changes == (
        FieldChange(
            op="add", path="mcp_servers[atlassian]", new={"name": "atlassian", "url": "https://j"}
        ),
        FieldChange(op="change", path="mcp_servers[github].url", old="https://a", new="https://b"),
    )


def test_keyed_lists_nested_in_an_ordered_list() -> None:
    live = {"tools": [{"type": "t", "configs": [{"name": "bash", "enabled": True}]}]}
    want = {"tools": [{"type": "t", "configs": [{"name": "aa", "enabled": True}, {"name": "bash", "enabled": False}]}]}  # fmt: skip
    paths = [c.path for c in diff_objects(live, want, keyed={"tools.*.configs": "name"})]
    assert paths == ["tools[0].configs[aa]", "tools[0].configs[bash].enabled"]


def test_duplicate_keys_fall_back_to_the_index() -> None:
    live = {"mcp_servers": [{"name": "x", "url": "1"}, {"name": "x", "url": "2"}]}
    want = {"mcp_servers": [{"name": "x", "url": "1"}, {"name": "x", "url": "3"}]}
    [change] = diff_objects(live, want, keyed={"mcp_servers": "name"})
    assert change.path == "mcp_servers[1].url"


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6),
)
def test_by_value_changes_turn_one_multiset_into_the_other(old: list[str], new: list[str]) -> None:
    changes = diff_objects(env(sorted(old)), env(sorted(new)), HOSTS)
    result = Counter(old)
    for c in changes:
        assert c.path == "config.networking.allowed_hosts"
        if c.op == "add":
            result[c.new] += 1
        else:
            result[c.old] -= 1
    assert +result == Counter(new)
