"""The local provider's request models accept exactly the fields the SDK declares, all the way
down: every object of a request body (local ``schemas*`` model) is matched with the SDK's
``TypedDict`` of the same ``type`` and their field names compared. A field the SDK does not
declare is refused by the local provider (``extra="forbid"``), so an extra field here would be
accepted locally and refused by the API, and a missing one refused locally and accepted there.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Any, Literal, Required

import pytest
import typing_extensions
from anthropic.types.beta import (
    agent_create_params,
    agent_update_params,
    deployment_create_params,
    deployment_update_params,
    environment_create_params,
    environment_update_params,
    memory_store_create_params,
    memory_store_update_params,
    session_create_params,
    session_update_params,
    vault_create_params,
    vault_update_params,
)
from anthropic.types.beta.memory_stores import memory_create_params, memory_update_params
from anthropic.types.beta.sessions import (
    event_send_params,
    resource_add_params,
    resource_update_params,
)
from anthropic.types.beta.vaults import credential_create_params, credential_update_params
from pydantic import BaseModel
from typing_extensions import TypedDict

from reconciler.provider.local import schemas, schemas_memory, schemas_runtime

#: Fields of the SDK's params that travel as headers, in the path or in the query, not in the
#: body (a memory's ``view`` is a query parameter).
HEADER_FIELDS = frozenset(
    {"betas", "workspace_id", "vault_id", "memory_store_id", "session_id", "view"}
)

BODIES: list[tuple[type[BaseModel], Any]] = [
    (schemas.AgentCreate, agent_create_params.AgentCreateParams),
    (schemas.AgentUpdate, agent_update_params.AgentUpdateParams),
    (schemas.EnvironmentCreate, environment_create_params.EnvironmentCreateParams),
    (schemas.EnvironmentUpdate, environment_update_params.EnvironmentUpdateParams),
    (schemas.VaultCreate, vault_create_params.VaultCreateParams),
    (schemas.VaultUpdate, vault_update_params.VaultUpdateParams),
    (schemas.CredentialCreate, credential_create_params.CredentialCreateParams),
    (schemas.CredentialUpdate, credential_update_params.CredentialUpdateParams),
    (schemas_runtime.SessionCreate, session_create_params.SessionCreateParams),
    (schemas_runtime.SessionUpdate, session_update_params.SessionUpdateParams),
    (schemas_runtime.EventsSend, event_send_params.EventSendParams),
    (schemas_runtime.SessionResourceAdd, resource_add_params.ResourceAddParams),
    (schemas_runtime.SessionResourceUpdate, resource_update_params.ResourceUpdateParams),
    (schemas_runtime.DeploymentCreate, deployment_create_params.DeploymentCreateParams),
    (schemas_runtime.DeploymentUpdate, deployment_update_params.DeploymentUpdateParams),
    (schemas_memory.MemoryStoreCreate, memory_store_create_params.MemoryStoreCreateParams),
    (schemas_memory.MemoryStoreUpdate, memory_store_update_params.MemoryStoreUpdateParams),
    (schemas_memory.MemoryCreate, memory_create_params.MemoryCreateParams),
    (schemas_memory.MemoryUpdate, memory_update_params.MemoryUpdateParams),
]


def _nested(annotation: Any, want: Any) -> list[Any]:
    """The classes inside ``annotation`` (unions, lists, Annotated, Optional...) that ``want``
    accepts, in order, each once."""
    found: list[Any] = []

    def walk(t: Any) -> None:
        if isinstance(t, type) and want(t):
            if t not in found:
                found.append(t)
            return
        for arg in typing.get_args(t):
            walk(arg)

    walk(annotation)
    return found


def _is_local(t: type) -> bool:
    return issubclass(t, BaseModel)


def _is_sdk(t: type) -> bool:
    return typing_extensions.is_typeddict(t)


def _local_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.annotation for name, f in model.model_fields.items()}


def _sdk_fields(td: Any, top: bool = False) -> dict[str, Any]:
    hints = typing.get_type_hints(td)
    return {k: v for k, v in hints.items() if not (top and k in HEADER_FIELDS)}


def _tags(annotation: Any) -> set[str]:
    """The string literals a ``type`` (or ``name``) field allows."""
    tags: set[str] = set()

    def walk(t: Any) -> None:
        if typing.get_origin(t) is typing.Literal:
            tags.update(a for a in typing.get_args(t) if isinstance(a, str))
        for arg in typing.get_args(t):
            walk(arg)

    walk(annotation)
    return tags


def _key(fields: dict[str, Any]) -> set[str]:
    for name in ("type", "name"):
        if name in fields:
            return _tags(fields[name])
    return set()


def compare(
    local: type[BaseModel], sdk: list[Any], where: str, out: list[str], top: bool = False
) -> None:
    """Compare one local model with the SDK TypedDict(s) it stands for, then their children
    (``top``: a request body, whose header, path and query fields are not compared)."""
    mine = _local_fields(local)
    theirs: dict[str, list[Any]] = {}
    for td in sdk:
        for name, annotation in _sdk_fields(td, top).items():
            theirs.setdefault(name, []).append(annotation)
    for name in sorted(set(mine) - set(theirs)):
        out.append(f"{where}.{name}: accepted locally, not declared by the SDK")
    for name in sorted(set(theirs) - set(mine)):
        out.append(f"{where}.{name}: declared by the SDK, refused locally")
    for name in sorted(set(mine) & set(theirs)):
        children = _nested(mine[name], _is_local)
        sdk_children = [c for a in theirs[name] for c in _nested(a, _is_sdk)]
        if not children:
            continue
        if not sdk_children:
            out.append(f"{where}.{name}: an object locally, not in the SDK")
            continue
        pair(children, sdk_children, f"{where}.{name}", out)


def pair(local: list[Any], sdk: list[Any], where: str, out: list[str]) -> None:
    """Match local models with SDK TypedDicts by their ``type`` literals and compare each."""
    if len(local) == 1 and not _key(_local_fields(local[0])) & set().union(
        *(_key(_sdk_fields(s)) for s in sdk)
    ):
        compare(local[0], sdk, where, out)  # one object each side, no tag to match by
        return
    matched: set[int] = set()
    for model in local:
        tags = _key(_local_fields(model))
        mates = [s for s in sdk if _key(_sdk_fields(s)) & tags]
        if not mates:
            out.append(f"{where}: {model.__name__} ({sorted(tags)}) has no SDK counterpart")
            continue
        matched.update(id(m) for m in mates)
        compare(model, mates, f"{where}<{'|'.join(sorted(tags))}>", out)
    for td in sdk:
        if id(td) not in matched:
            out.append(f"{where}: SDK {td.__name__} is not accepted locally")


@pytest.mark.parametrize("local, sdk", BODIES, ids=lambda x: getattr(x, "__name__", "?"))
def test_request_bodies_declare_what_the_sdk_declares(local: type[BaseModel], sdk: Any) -> None:
    problems: list[str] = []
    compare(local, [sdk], local.__name__, problems, top=True)
    assert problems == []


def test_every_body_model_is_compared() -> None:
    """A new request body of the local provider gets its row in BODIES."""
    body = re.compile(
        r"(Agent|Environment|Vault|Credential|Session|Deployment|MemoryStore|Memory)"
        r"(Create|Update)|SessionResource(Add|Update)"
    )
    bodies = {
        model
        for module in (schemas, schemas_runtime, schemas_memory)
        for name, model in vars(module).items()
        if isinstance(model, type) and (body.fullmatch(name) or name == "EventsSend")
    }
    assert bodies == {local for local, _ in BODIES}


class _Leaf(BaseModel):
    type: Literal["leaf"]
    color: str


class _Root(BaseModel):
    name: str
    leaves: list[_Leaf]


class _LeafParams(TypedDict, total=False):
    type: Required[Literal["leaf"]]
    size: int


class _RootParams(TypedDict, total=False):
    name: Required[str]
    leaves: Iterable[_LeafParams]
    betas: list[str]


def test_the_comparison_sees_a_difference_deep_inside() -> None:
    problems: list[str] = []
    compare(_Root, [_RootParams], "Root", problems, top=True)
    assert problems == [
        "Root.leaves<leaf>.color: accepted locally, not declared by the SDK",
        "Root.leaves<leaf>.size: declared by the SDK, refused locally",
    ]
