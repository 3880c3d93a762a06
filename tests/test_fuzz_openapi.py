"""The local provider's OpenAPI document, fuzzed with schemathesis.

Every operation of ``/openapi.json`` (except the never-ending SSE stream) gets requests
generated from its schema, valid and invalid ones, against the ASGI app with no fault
injection. Two checks:

* no 5xx, ever (``not_a_server_error``): without injected faults, a 5xx is a provider bug;
* every error (4xx) is the Anthropic envelope,
  ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``, with a
  ``request-id`` header equal to the body's, and a JSON content type.

The default run sends a few requests per operation with the beta header set (so requests get
past the header check to the handlers); the ``slow`` run sends many, and lets schemathesis
generate the header too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from support.reliability import BETA

ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
    "billing_error",
    "conflict_error",
    "agent_archived_error",
    "environment_archived_error",
    "environment_not_found_error",
    "vault_archived_error",
    "vault_not_found_error",
    "memory_precondition_failed_error",
    "memory_path_conflict_error",
}


@schemathesis.check
def anthropic_error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer is ``{"type":"error","error":{"type","message"},"request_id"}``."""
    if response.status_code < 400:
        return None
    assert "json" in response.headers.get("content-type", [""])[0], response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("type") == "error", body
    error = body.get("error")
    assert isinstance(error, dict), body
    assert isinstance(error.get("type"), str) and error["type"], body
    assert error["type"] in ERROR_TYPES, f"unknown error type {error['type']!r}"
    assert isinstance(error.get("message"), str) and error["message"].strip(), body
    request_id = body.get("request_id")
    assert isinstance(request_id, str) and request_id, body
    header = response.headers.get("request-id", [None])[0]
    assert header == request_id, (header, request_id)
    return None


def _schema(db: Path, *, max_examples: int) -> Any:
    from reconciler.provider.local import create_app

    config = SchemathesisConfig()
    config.projects.default.phases.update(phases=["fuzzing"])
    config.projects.default.generation.update(modes=list(GenerationMode), max_examples=max_examples)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(db), config=config)
    return schema.exclude(path_regex=r"/events/stream$")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield _schema(tmp_path_factory.mktemp("fuzz") / "provider.db", max_examples=3)


@pytest.fixture(scope="module")
def api_schema_many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield _schema(tmp_path_factory.mktemp("fuzz-many") / "provider.db", max_examples=30)


schema = schemathesis.pytest.from_fixture("api_schema")
schema_many = schemathesis.pytest.from_fixture("api_schema_many")


@schema.parametrize()
def test_no_5xx_and_every_error_in_the_envelope(case: Any) -> None:
    case.call_and_validate(
        headers={"anthropic-beta": BETA, "anthropic-version": "2026-10-21", "x-api-key": "fuzz"},
        checks=[not_a_server_error, anthropic_error_envelope],
    )


@pytest.mark.slow
@schema_many.parametrize()
def test_no_5xx_and_every_error_in_the_envelope_many(case: Any) -> None:
    # the generated headers too: a wrong or missing beta header must be a 4xx in the envelope
    case.call_and_validate(checks=[not_a_server_error, anthropic_error_envelope])


def test_the_envelope_check_rejects_what_it_should() -> None:
    """The custom check is not vacuous: a bare FastAPI error body fails it."""

    class Fake:
        status_code = 422

        def __init__(self, body: Any) -> None:
            self._body = body
            self.headers = {"content-type": ["application/json"], "request-id": ["req_1"]}

        def json(self) -> Any:
            return self._body

    good = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad"},
        "request_id": "req_1",
    }
    anthropic_error_envelope(None, Fake(good), None)
    for bad in (
        {"detail": [{"msg": "field required"}]},
        {**good, "type": "oops"},
        {**good, "error": {"type": "invalid_request_error", "message": ""}},
        {**good, "request_id": "req_2"},
    ):
        with pytest.raises(AssertionError):
            anthropic_error_envelope(None, Fake(bad), None)
