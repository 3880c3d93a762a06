"""The vocabulary (``reconciler.kinds``): one table of kinds, addresses, ownership tags, and
the local provider's own copies kept in agreement with it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from reconciler import kinds
from reconciler.kinds import (
    DEFAULT_PROVIDER_DB,
    ID_PREFIXES,
    KIND_ORDER,
    MANIFEST_KINDS,
    NAME_PATTERN,
    TAG_KEYS,
    WIRE_TYPES,
    Address,
    Owner,
    kind_of,
    owned_address,
    owner_of,
    tags,
)
from reconciler.manifest import manifest_json_schema
from reconciler.provider import SkillUpload
from reconciler.provider.adapter import ClientBackedProvider


def test_the_tables_say_what_the_reconciler_has_always_done() -> None:
    # dependency order: each kind references only kinds before it (plans and drift sort by it)
    assert KIND_ORDER == (
        "environment",
        "memory_store",
        "skill",
        "vault",
        "credential",
        "agent",
        "deployment",
    )
    assert list(MANIFEST_KINDS.items()) == [
        ("Agent", "agent"),
        ("Environment", "environment"),
        ("Vault", "vault"),
        ("Deployment", "deployment"),
        ("MemoryStore", "memory_store"),
        ("Skill", "skill"),
    ]
    assert kinds.DELETABLE_KINDS == {"environment", "vault", "credential", "memory_store", "skill"}
    assert [k.kind for k in kinds.KINDS if not k.can_archive] == ["skill"]
    assert [k.kind for k in kinds.KINDS if not k.has_metadata] == ["skill"]
    assert [k.kind for k in kinds.KINDS if k.has_versions] == ["agent"]
    assert kinds.TOP_LEVEL_KINDS == (
        "agent", "environment", "vault", "deployment", "memory_store", "skill"
    )  # fmt: skip
    assert TAG_KEYS == ("managed-by", "reconciler-project", "reconciler-address")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("agent.coder", Address("agent", "coder")),
        ("environment.python-data", Address("environment", "python-data")),
        ("vault.github.credential.token", Address("credential", "token", vault="github")),
        ("memory_store.notes", Address("memory_store", "notes")),
        ("skill.pdf-tools", Address("skill", "pdf-tools")),
    ],
)
def test_an_address_parses_and_prints_back(text: str, address: Address) -> None:
    assert Address.parse(text) == address
    assert str(address) == text
    assert kind_of(text) == address.kind


@pytest.mark.parametrize(
    "text", ["agent", "robot.x", "agent.Coder", "vault.v.credential", "agent.a.b", "agent."]
)
def test_what_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an address"):
        Address.parse(text)


def test_a_credential_address_names_its_vault() -> None:
    address = Address.parse("vault.github.credential.token")
    assert address.parent == Address("vault", "github")
    assert Address("agent", "coder").parent is None
    assert kinds.credential_address("github", "token") == "vault.github.credential.token"
    # a twin's archive action keeps its kind
    assert kind_of("agent.coder[agent_01abc]") == "agent"


def test_ownership_tags_are_written_and_read_by_one_pair_of_functions() -> None:
    obj = {"metadata": {"team": "infra", **tags("web", "agent.coder")}}
    assert owner_of(obj) == Owner("web", "agent.coder")
    assert owned_address(obj, "web") == "agent.coder"
    assert owned_address(obj, "default") is None
    assert owner_of({"metadata": {"reconciler-project": "web"}}) is None  # no managed-by
    assert owner_of({"metadata": None}) is None
    assert owner_of({"metadata": {"managed-by": "reconciler"}}) == Owner(None, None)


def test_the_manifest_schema_and_validation_use_the_vocabulary() -> None:
    schema = manifest_json_schema()
    assert NAME_PATTERN in str(schema)
    # and Policy: a document that checks the others, no kind of remote resource
    assert [*MANIFEST_KINDS, "Policy"] == schema["properties"]["kind"]["enum"]


def test_the_local_provider_copies_agree_with_the_vocabulary() -> None:
    """The local provider imports nothing from reconciler (it can be pulled out), so it keeps
    its own id prefixes and default database path: they must say the same."""
    from reconciler.provider.local import ids, server

    for kind, prefix in ID_PREFIXES.items():
        assert f"{ids.PREFIXES[kind]}_" == prefix, kind
    assert inspect.signature(server.serve).parameters["db_path"].default == DEFAULT_PROVIDER_DB


def test_every_default_database_path_is_the_vocabulary_one() -> None:
    from reconciler.provider import embedded

    defaults = [
        p.default
        for _, fn in inspect.getmembers(embedded, inspect.isfunction)
        for name, p in inspect.signature(fn).parameters.items()
        if name == "db_path" and p.default is not inspect.Parameter.empty
    ]
    assert defaults and set(defaults) == {DEFAULT_PROVIDER_DB}


@pytest.mark.anyio
async def test_the_local_provider_makes_ids_and_types_the_vocabulary_expects(
    client: Any,
) -> None:
    provider = ClientBackedProvider(client)
    agent = await provider.create("agent", {"name": "a", "model": "claude-sonnet-4-6"})
    env = await provider.create("environment", {"name": "e"})
    vault = await provider.create("vault", {"display_name": "v"})
    auth = {"type": "static_bearer", "mcp_server_url": "https://m.example.com", "token": "t"}
    cred = await provider.create(
        "credential", {"display_name": "c", "auth": auth}, parent_id=vault["id"]
    )
    message = {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
    deployment = await provider.create(
        "deployment",
        {
            "name": "d",
            "agent": agent["id"],
            "environment_id": env["id"],
            "initial_events": [message],
        },
    )
    store = await provider.create("memory_store", {"name": "m"})
    bundle = SkillUpload((("s/SKILL.md", b"---\nname: s\ndescription: d\n---\n"),))
    skill = await provider.create("skill", {"files": bundle, "display_name": "s"})
    made = {
        "skill": skill,
        "memory_store": store,
        "agent": agent,
        "environment": env,
        "vault": vault,
        "credential": cred,
        "deployment": deployment,
    }
    assert set(made) == set(kinds.KIND_NAMES)
    for kind, obj in made.items():
        assert obj["id"].startswith(ID_PREFIXES[kind]), kind
        assert obj["type"] == WIRE_TYPES[kind], kind
    # the one rule for where a kind keeps its remote name
    names = {k: kinds.remote_name_of(k, obj) for k, obj in made.items()}
    assert names == {"agent": "a", "environment": "e", "vault": "v", "credential": "c",
                     "deployment": "d", "memory_store": "m", "skill": "s"}  # fmt: skip
