"""The OpenAPI document: response shapes, error envelopes and the beta header, for fuzzers.

FastAPI derives request schemas from ``schemas``; handlers return raw JSON, so this module
adds what FastAPI cannot see: the response object of every operation, the Anthropic error
envelope for every error status (and removes FastAPI's 422, which this API never sends),
the API key (``x-api-key`` or a bearer token) and the required ``anthropic-version`` and
``anthropic-beta`` headers.
Documentation only: nothing here runs per request, and its models are built on first use.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, create_model

from .errors import BETA


class _Doc(BaseModel):
    # Built (validator, serializer) only when the document is asked for: ~0.3 MiB of every
    # process serving the provider, the embedded one in a plan included, that never asks.
    model_config = ConfigDict(extra="allow", defer_build=True)


def _archivable(model: type[_Doc]) -> type[_Doc]:
    """``model`` followed by the timestamps every archivable object ends with (a base class
    would put them first in the document)."""
    return create_model(
        model.__name__,
        __base__=model,
        created_at=(str, ...),
        updated_at=(str, ...),
        archived_at=(str | None, ...),
    )


class ErrorDetail(_Doc):
    type: str
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(_Doc):
    type: Literal["error"]
    error: ErrorDetail
    request_id: str


@_archivable
class Agent(_Doc):
    type: Literal["agent"]
    id: str
    version: int
    name: str
    description: str | None
    system: str | None
    model: dict[str, Any]
    tools: list[dict[str, Any]]
    mcp_servers: list[dict[str, Any]]
    skills: list[dict[str, Any]]
    execution_identity: dict[str, Any]
    multiagent: dict[str, Any] | None
    metadata: dict[str, str]


@_archivable
class Environment(_Doc):
    type: Literal["environment"]
    id: str
    name: str
    description: str | None
    config: dict[str, Any]
    metadata: dict[str, str]
    scope: str | None


@_archivable
class Vault(_Doc):
    type: Literal["vault"]
    id: str
    display_name: str
    metadata: dict[str, str]


@_archivable
class Credential(_Doc):
    type: Literal["vault_credential"]
    id: str
    vault_id: str
    display_name: str | None
    metadata: dict[str, str]
    auth: dict[str, Any]


class CredentialValidation(_Doc):
    type: Literal["vault_credential_validation"]
    credential_id: str
    vault_id: str
    status: Literal["valid", "invalid", "unknown"]
    has_refresh_token: bool
    validated_at: str


@_archivable
class Session(_Doc):
    type: Literal["session"]
    id: str
    agent: dict[str, Any]
    environment_id: str
    vault_ids: list[str]
    status: Literal["rescheduling", "running", "idle", "terminated"]
    title: str | None
    metadata: dict[str, str]
    resources: list[dict[str, Any]]
    usage: dict[str, Any]
    stats: dict[str, Any]
    outcome_evaluations: list[dict[str, Any]]
    deployment_id: str | None


@_archivable
class Deployment(_Doc):
    type: Literal["deployment"]
    id: str
    name: str
    description: str | None
    agent: dict[str, Any]
    environment_id: str
    vault_ids: list[str]
    initial_events: list[dict[str, Any]]
    resources: list[dict[str, Any]]
    schedule: dict[str, Any] | None
    status: Literal["active", "paused"]
    paused_reason: dict[str, Any] | None
    metadata: dict[str, str]


class DeploymentRun(_Doc):
    type: Literal["deployment_run"]
    id: str
    deployment_id: str
    agent: dict[str, Any]
    trigger_context: dict[str, Any]
    session_id: str | None
    error: dict[str, Any] | None
    created_at: str


class Skill(_Doc):
    type: Literal["skill"]
    id: str
    display_name: str
    source: dict[str, Any]
    latest_version_id: str
    created_at: str
    updated_at: str


class SkillVersion(_Doc):
    type: Literal["skill_version"]
    id: str
    skill_id: str
    name: str
    description: str
    created_at: str


class File(_Doc):
    type: Literal["file"]
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str
    downloadable: bool
    expires_at: str | None
    scope: dict[str, Any] | None


class Deleted(_Doc):
    id: str
    type: str


class Event(_Doc):
    id: str
    type: str


class EventBatch(_Doc):
    data: list[Event]


def _page(name: str, item: type[BaseModel], bidirectional: bool = False) -> type[BaseModel]:
    fields: dict[str, Any] = {"data": (list[item], ...), "next_page": (str | None, ...)}  # type: ignore[valid-type]
    if bidirectional:
        fields["prev_page"] = (str | None, ...)
    return create_model(name, __base__=_Doc, **fields)


_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        ErrorEnvelope,
        Agent,
        Environment,
        Vault,
        Credential,
        CredentialValidation,
        Session,
        Deployment,
        DeploymentRun,
        Skill,
        SkillVersion,
        File,
        Deleted,
        Event,
        EventBatch,
    )
}
for _name, _item, _bi in (
    ("AgentPage", Agent, False),
    ("EnvironmentPage", Environment, False),
    ("VaultPage", Vault, False),
    ("CredentialPage", Credential, False),
    ("SessionPage", Session, True),
    ("EventPage", Event, False),
    ("DeploymentPage", Deployment, False),
    ("DeploymentRunPage", DeploymentRun, False),
    ("SkillPage", Skill, False),
    ("SkillVersionPage", SkillVersion, False),
    ("FilePage", File, False),
):
    _MODELS[_name] = _page(_name, _item, _bi)

# (method, path regex) -> response model name, first match wins.
_ROUTES: list[tuple[str, str, str]] = [
    ("get", r"/v1/agents/\{agent_id\}/versions", "AgentPage"),
    ("get", r"/v1/agents", "AgentPage"),
    ("*", r"/v1/agents.*", "Agent"),
    ("get", r"/v1/environments", "EnvironmentPage"),
    ("delete", r"/v1/environments/.*", "Deleted"),
    ("*", r"/v1/environments.*", "Environment"),
    ("post", r".*/mcp_oauth_validate", "CredentialValidation"),
    ("get", r"/v1/vaults/\{vault_id\}/credentials", "CredentialPage"),
    ("delete", r"/v1/vaults/.*", "Deleted"),
    ("*", r"/v1/vaults/\{vault_id\}/credentials.*", "Credential"),
    ("get", r"/v1/vaults", "VaultPage"),
    ("*", r"/v1/vaults.*", "Vault"),
    ("get", r"/v1/sessions/\{session_id\}/events", "EventPage"),
    ("post", r"/v1/sessions/\{session_id\}/events", "EventBatch"),
    ("get", r"/v1/sessions", "SessionPage"),
    ("delete", r"/v1/sessions/.*", "Deleted"),
    ("*", r"/v1/sessions.*", "Session"),
    ("post", r"/v1/deployments/\{deployment_id\}/run", "DeploymentRun"),
    ("get", r"/v1/deployments", "DeploymentPage"),
    ("*", r"/v1/deployments.*", "Deployment"),
    ("get", r"/v1/deployment_runs", "DeploymentRunPage"),
    ("*", r"/v1/deployment_runs.*", "DeploymentRun"),
    # a version's /content is a zip: no JSON model (routes_skills declares it)
    ("get", r"/v1/skills/\{skill_id\}/versions", "SkillVersionPage"),
    ("get", r"/v1/skills", "SkillPage"),
    ("delete", r"/v1/skills/.*", "Deleted"),
    ("*", r"/v1/skills/\{skill_id\}/versions(/\{version\})?", "SkillVersion"),
    ("*", r"/v1/skills(/\{skill_id\})?", "Skill"),
    # a file's /content is its bytes: no JSON model (routes_files declares it)
    ("get", r"/v1/files", "FilePage"),
    ("delete", r"/v1/files/.*", "Deleted"),
    ("*", r"/v1/files(/\{file_id\})?", "File"),
]
_ERRORS = {
    "400": "Invalid request (bad body, query, cursor or beta header)",
    "401": "No API key (x-api-key or Authorization: Bearer; any value is accepted)",
    "404": "Unknown id or route",
    "405": "Method not allowed",
    "409": "Conflict (version precondition, unique name or key, archived session)",
    "413": "Request body over 32 MB (a file over 500 MB)",
    "429": "Rate limited (fault injection only)",
    "500": "Internal error",
    "503": "The database is locked by another process",
    "529": "Overloaded (fault injection only)",
}


def multipart_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that parses a multipart upload by hand: the form
    fields FastAPI cannot see, for the document."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_CACHE: dict[tuple[int, ...], dict[str, Any]] = {}


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with a generator that produces the completed document.

    Every app of a process shares the same route objects, so the (slow) document is built
    once per distinct route set and shared.
    """

    def generate() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        key = tuple(id(route) for route in app.routes)
        if key in _CACHE:
            app.openapi_schema = _CACHE[key]
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        for model_name, model in _MODELS.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model_name] = schema
        beta = {
            "name": "anthropic-beta",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": [BETA]},
        }
        version = {
            "name": "anthropic-version",
            "in": "header",
            "required": True,
            "description": "Any value is taken; none is a 400",
            "schema": {"type": "string"},
        }
        doc["components"]["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "Bearer": {"type": "http", "scheme": "bearer"},
        }
        for path, item in doc.get("paths", {}).items():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                if path.startswith("/v1/"):
                    op["security"] = [{"ApiKey": []}, {"Bearer": []}]
                    op.setdefault("parameters", []).extend((version, beta))
                    name = next(
                        (
                            n
                            for m, rx, n in _ROUTES
                            if m in ("*", method) and re.fullmatch(rx, path)
                        ),
                        None,
                    )
                    ok = responses.setdefault("200", {"description": "OK"})
                    if name is not None and "text/event-stream" not in ok.get("content", {}):
                        ok["content"] = {"application/json": {"schema": _ref(name)}}
                for status, text in _ERRORS.items():
                    responses[status] = {
                        "description": text,
                        "content": {"application/json": {"schema": _ref("ErrorEnvelope")}},
                    }
        app.openapi_schema = _CACHE[key] = doc
        return doc

    app.openapi = generate  # type: ignore[method-assign]
