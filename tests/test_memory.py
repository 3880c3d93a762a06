"""What keeps a big plan's memory and a run's fixed cost down (bench/RESULTS.md, session 3):
each measure is checked for what it must not change, and for doing what it claims."""

from __future__ import annotations

import gc
import shutil
import ssl
from pathlib import Path

import httpx
import pytest

from reconciler.engine.model import FieldChange
from reconciler.manifest.agent import AgentSpec
from reconciler.provider import embedded_client
from reconciler.provider.adapter import ClientBackedProvider

pytestmark = pytest.mark.anyio


def test_frozen_models_share_their_fields_set_without_changing_what_was_set() -> None:
    one = AgentSpec.model_validate({"model": "claude-sonnet-4-6"})
    two = AgentSpec.model_validate({"model": "claude-opus-4-6"})
    other = AgentSpec.model_validate({"model": "claude-opus-4-6", "system": "hi"})
    assert one.model_fields_set is two.model_fields_set == {"model"}
    assert other.model_fields_set == {"model", "system"}
    # what "exclude_unset" (the desired request body) sees is each instance's own
    assert set(one.model_dump(exclude_unset=True)) == {"model"}
    assert set(other.model_dump(exclude_unset=True)) == {"model", "system"}
    change = FieldChange(path="system", op="change", old="a", new="b")
    copy = change.model_copy(update={"new": "c"})
    assert copy.model_fields_set is not change.model_fields_set  # a copy gets its own set
    assert FieldChange(path="system", op="change", old="a", new="b").model_fields_set == (
        change.model_fields_set
    )


async def test_listed_objects_share_equal_short_strings(tmp_path: Path) -> None:
    async with embedded_client(tmp_path / "p.db") as client:
        for i in range(3):
            await client.agents.create(
                {"name": f"agent-{i}", "model": "claude-sonnet-4-6", "metadata": {"team": "x"}}
            )
        first, second, third = await ClientBackedProvider(client).list_all("agent")
    assert first["model"]["id"] is second["model"]["id"] is third["model"]["id"]
    assert first["metadata"]["team"] is third["metadata"]["team"] == "x"
    assert first["id"] != second["id"]  # values are untouched, only shared


async def test_a_read_response_is_freed_without_the_garbage_collector(tmp_path: Path) -> None:
    """A response and its stream referred to each other: every list page stayed alive until
    the collector ran, and plan pauses it."""
    async with embedded_client(tmp_path / "p.db") as client:
        await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        gc.collect()
        before = {id(o) for o in gc.get_objects() if isinstance(o, httpx.Response)}
        gc.disable()
        try:
            for _ in range(5):
                await client.agents.list(include_archived=True).to_list()
            alive = [
                o for o in gc.get_objects() if isinstance(o, httpx.Response) and id(o) not in before
            ]
        finally:
            gc.enable()
    assert alive == []  # (responses of other tests in this process do not count)


def test_uncoloured_text_is_what_rich_would_print() -> None:
    """The plan's text skips rich's console when nothing is coloured (~0.3 s for the plan
    of an apply of 1,000 agents): the same characters, every time."""
    from reconciler.render.text import _emit, _rich_emit, _Styled

    samples = [
        "  + agent.reviewer  create",
        '      ~ system: "a … b"   ',
        '      + name: "名前" 😀 ü',
        "",
        "x" * 300,  # longer than the width: never wrapped
        "  [bold]not markup[/bold] :smile: http://x.y 1.5 True",
        "bell\x07 back\x08 cr\r ff\x0c vt\x0b",  # dropped as rich's Text drops them
        "a\tb",  # rich expands tabs: the fast path leaves such text to rich
    ]

    def lines() -> list[_Styled]:
        made = [_Styled(s, style="bold" if i % 2 else "") for i, s in enumerate(samples)]
        made[0].append(" more\r", style="green")
        return made

    for width in (60, 100):
        assert _emit(lines(), color=False, width=width) == _rich_emit(
            lines(), color=False, width=width
        )
        assert _emit(lines()[:-1], color=False, width=width) == _rich_emit(
            lines()[:-1], color=False, width=width
        )


def test_a_client_of_an_http_url_loads_no_ca_bundle() -> None:
    """Loading the CA bundle is 30-80 ms of every start; an http:// provider needs none,
    and its context still refuses any TLS peer (it verifies, with no CA to trust)."""
    import ssl

    from reconciler.provider.client import _ssl_context_for

    plain = _ssl_context_for("http://127.0.0.1:8787")
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert _ssl_context_for("https://api.anthropic.com").cert_store_stats()["x509_ca"] > 0


async def test_request_urls_are_parsed_once_and_merged_as_httpx_would(tmp_path: Path) -> None:
    from reconciler.provider import ProviderClient

    async with ProviderClient("https://proxy.example/anthropic/") as client:
        url = client._url("/v1/agents")
        assert url is client._url("/v1/agents")  # an apply sends every create here
        assert url == client._http._merge_url("/v1/agents")
        item = client._url("/v1/agents/agent_01%2Fx")
        assert item == client._http._merge_url("/v1/agents/agent_01%2Fx")
    async with embedded_client(tmp_path / "p.db") as local:
        await local.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        assert [a["name"] for a in await local.agents.list().to_list()] == ["a"]


# -- issue #12, session 8: the embedded provider's share of a plan's peak (bench/RESULTS.md) --

REPO = Path(__file__).resolve().parent.parent


def _embedded_plan_modules(work: Path, entry: str) -> set[str]:
    from test_startup import imported_modules

    if not (work / "manifests").exists():
        shutil.copytree(REPO / "manifests", work / "manifests")
    args = ["--provider-db", str(work / "provider.db"), "plan"]
    return imported_modules(args, work, entry=entry, whole=True)


@pytest.fixture(scope="module")
def embedded_plan_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every module ``reconciler plan`` loads with the embedded provider (the CLI's default),
    run as the console script runs it (``reconciler.launch``)."""
    return _embedded_plan_modules(tmp_path_factory.mktemp("embedded-plan"), "reconciler.launch")


def test_the_embedded_provider_starts_no_server_stack(embedded_plan_modules: set[str]) -> None:
    """The embedded provider is served in-process: uvicorn (and the multiprocessing,
    logging.config... it imports, ~1.5 MiB) is for ``provider serve`` alone."""
    assert "reconciler.provider.local.app" in embedded_plan_modules  # it did serve the plan
    assert not {m for m in embedded_plan_modules if m.split(".")[0] == "uvicorn"}


def test_the_server_names_still_import_from_the_package() -> None:
    from reconciler.provider import local
    from reconciler.provider.local import BackgroundServer, serve
    from reconciler.provider.local.server import BackgroundServer as Server
    from reconciler.provider.local.server import serve as serving

    assert BackgroundServer is Server and serve is serving
    with pytest.raises(AttributeError, match="no_such_name"):
        local.no_such_name  # noqa: B018


def test_the_console_script_spares_fastapi_its_pydantic_v1_check(
    embedded_plan_modules: set[str], tmp_path: Path
) -> None:
    """FastAPI imports ``pydantic.v1`` (23 modules, ~1.7 MiB) while it builds the embedded
    provider's routes, only to learn that no parameter is a pydantic 1 model; the console
    script stops that import (``launch``), ``python -m reconciler.cli`` does not."""
    assert "fastapi" in embedded_plan_modules
    assert not {m for m in embedded_plan_modules if m.startswith("pydantic.v1")}
    assert "pydantic.v1" in _embedded_plan_modules(tmp_path, "reconciler.cli")


def test_fastapi_reads_the_stopped_import_as_no_pydantic_v1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    import pydantic
    from fastapi._compat import shared

    from reconciler import launch
    from reconciler.provider.local.schemas import AgentCreate

    # as in a new process: no pydantic.v1 yet (this one may have loaded it); restored after
    monkeypatch.setitem(sys.modules, "trio", sys.modules.get("trio"))
    monkeypatch.delitem(sys.modules, "pydantic.v1", raising=False)
    monkeypatch.delattr(pydantic, "v1", raising=False)
    launch._trim_imports()
    with pytest.raises(ImportError):
        from pydantic import v1  # noqa: F401
    assert not shared.is_pydantic_v1_model_class(AgentCreate)
    assert not shared.annotation_is_pydantic_v1(list[AgentCreate])


def test_the_provider_serves_the_route_modules_own_routes(tmp_path: Path) -> None:
    """FastAPI analyses a route (dependencies, body validators) when it is declared; an
    included router is one more route that analyses all of its routes again on the first
    request it is matched against (~1 MiB). The app serves the declared routes themselves."""
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    from reconciler.provider.local import create_app, routes_agents, routes_files

    app = create_app(tmp_path / "p.db")
    served = {id(route) for route in app.routes}
    for module in (routes_agents, routes_files):
        assert {id(route) for route in module.router.routes} <= served
    assert all(isinstance(route, APIRoute | Route) for route in app.routes)
    app.state.provider.store.close()


def test_the_documents_models_are_built_when_the_document_is_asked_for(tmp_path: Path) -> None:
    """The OpenAPI document's response models (``openapi``) build their validators only when
    ``/openapi.json`` is generated, not in every process that serves the provider."""
    script = """
import sys
from reconciler.provider.local import create_app, openapi
app = create_app(sys.argv[1])
print(sum(m.__pydantic_complete__ for m in openapi._MODELS.values()), len(openapi._MODELS))
app.openapi()
print(sum(m.__pydantic_complete__ for m in openapi._MODELS.values()))
"""
    from test_startup import python_with_this_checkout

    result = python_with_this_checkout(script, str(tmp_path / "p.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (built, models), (after,) = (line.split() for line in result.stdout.splitlines())
    assert int(built) == 0 and int(models) > 20
    assert int(after) == int(models)  # and built the same when asked (test_fuzz_openapi)


async def test_a_client_builds_a_tls_context_only_for_a_transport_that_may_use_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS context is ~1 MiB (OpenSSL's tables): the embedded provider's client builds
    none (its transport never speaks TLS), a client of a URL one (httpx was handed a second,
    unused since it is given the transport); with proxy variables set, httpx's own transport
    gets the client's context."""
    from reconciler.provider import ProviderClient
    from reconciler.provider import client as client_module

    built: list[str] = []
    original = client_module._ssl_context_for

    def counting(base_url: str) -> ssl.SSLContext:
        built.append(base_url)
        return original(base_url)

    monkeypatch.setattr(client_module, "_ssl_context_for", counting)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with embedded_client(tmp_path / "p.db") as local:
        await local.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
    assert built == []
    async with ProviderClient("http://127.0.0.1:8787"):
        assert built == ["http://127.0.0.1:8787"]
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    async with ProviderClient("http://127.0.0.1:8787") as proxied:
        assert proxied._transport is None  # httpx's transport, which honours the proxy
        pool = proxied._http._transport._pool
        assert pool._ssl_context.cert_store_stats()["x509_ca"] == 0  # ours: no CA bundle
