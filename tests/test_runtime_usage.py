"""What a demanding new user of ``reconciler.runtime`` ran into, each case as they wrote it.

Type-checking a program against the installed package, typos in the runtime's keywords, an
API key copied with its line break, and lookups of applied resources from the wrong
directory or with a name where an address goes.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api
from support.gitops import make_workdir, ok

from reconciler.errors import AuthenticationError
from reconciler.provider import ProviderClient
from reconciler.provider.local import BackgroundServer, create_app
from reconciler.runtime import ManagedRuntime, NotApplied

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio


# -- typing: a user's program under mypy --strict ------------------------------------------

USER_PROGRAM = """
from __future__ import annotations

import asyncio

from reconciler.errors import NotFoundError
from reconciler.runtime import ManagedConfig, ManagedRuntime, NetworkingConfig


async def main() -> None:
    config = ManagedConfig(name="typed", networking=NetworkingConfig("limited", ["x.org"]))
    async with ManagedRuntime(config) as runtime:
        session_id: str = await runtime.create_session(
            await runtime.create_agent(), await runtime.create_environment()
        )
        try:
            async for event in runtime.run_turn(session_id, "hello"):
                print(event["type"])
        except NotFoundError as error:
            print(error.status, error.request_id)
        version: int = await runtime.create_agent()  # the mistake mypy must find


asyncio.run(main())
"""


def _installed_like_a_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Python whose site-packages has the package as ``pip install`` puts it there: the
    files setuptools' build_py ships (package data included or not), nothing else."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    build = tmp_path / "build"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools' notes on its beta pyproject support
        monkeypatch.chdir(REPO)  # setuptools takes the package paths relative to it
        dist = Distribution({"script_name": "setup.py"})
        apply_configuration(dist, REPO / "pyproject.toml")
        command = dist.get_command_obj("build_py")
        command.build_lib = str(build)  # type: ignore[attr-defined]
        command.compile = False  # type: ignore[attr-defined]
        dist.run_command("build_py")
    venv = tmp_path / "venv"
    # the dependencies as installed beside it (mypy reads no import hooks: an editable
    # install of this project there is not seen, only the build below)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True,
    )
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "reconciler.pth").write_text(f"{build}\n")
    return venv / "bin" / "python"


def test_a_users_program_type_checks_against_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PEP 561: without ``py.typed`` in what is installed, mypy skips the package ("missing
    library stubs or py.typed marker") and a ``--strict`` user program fails on its import."""
    python = _installed_like_a_wheel(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)  # mypy searches the current directory: not the source tree
    program = tmp_path / "program.py"
    program.write_text(USER_PROGRAM, encoding="utf-8")
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-executable",
            str(python),
            str(program),
        ]
    )
    assert "py.typed" not in out, out
    # exactly the one mistake, found because the runtime's types are seen
    assert status == 1, out + err
    line = USER_PROGRAM.splitlines().index(
        "        version: int = await runtime.create_agent()  # the mistake mypy must find"
    )
    mistake = (
        f'program.py:{line + 1}: error: Incompatible types in assignment (expression has type "str"'
    )
    assert mistake in out
    assert "Found 1 error" in out


# -- keywords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [("provider_ulr", "provider_url"), ("base_url", "provider_url"), ("timout", "timeout")],
)
def test_an_unknown_keyword_is_refused_when_the_runtime_is_built(keyword: str, hint: str) -> None:
    """A typo used to be accepted and fail only at the first call, as "ProviderClient.__init__()
    got an unexpected keyword argument" - or, worse, ``provider_ulr=`` ran nothing at all
    against the URL until then. ``base_url`` is the official SDK's name for provider_url."""
    with pytest.raises(TypeError, match=rf"'{keyword}' \(did you mean {hint}=\?\)"):
        ManagedRuntime(**{keyword: "http://127.0.0.1:1"})


def test_the_runtime_passes_on_every_keyword_of_the_client() -> None:
    from reconciler.runtime.runtime import CLIENT_OPTIONS

    taken = set(inspect.signature(ProviderClient.__init__).parameters)
    assert CLIENT_OPTIONS == taken - {"self", "base_url", "api_key"}
    ManagedRuntime(timeout=5, max_retries=0)  # still accepted


# -- API keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("sk-ant-api03-SECRETVALUE\n", "a line break at character 25 of 25"),
        ("sk-ant-api03-SECRETVALUE\r", "a carriage return"),
        ("sk-ant-api03-SECRÉTVALUE", "a non-ASCII character at character 18"),
        ('"sk-ant-api03-SECRETVALUE" ', "a space"),
    ],
)
@pytest.mark.parametrize("source", ["api_key", "ANTHROPIC_API_KEY"])
def test_an_api_key_no_header_can_carry_is_refused_without_showing_it(
    key: str, what: str, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TCP such a key failed as "no response from the provider ... (after 4 retries)"
    or as a UnicodeEncodeError whose repr holds the whole key; the embedded provider took a
    key with a line break as it was."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    if source == "api_key":
        build = lambda: ManagedRuntime(provider_url="http://127.0.0.1:1", api_key=key)
    else:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        build = ManagedRuntime
    with pytest.raises(ValueError, match=f"^{source} has {what}") as caught:
        build()
    for shown in (str(caught.value), repr(caught.value)):
        assert "SECR" not in shown and "VALUE" not in shown


# -- provider URLs -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["provider_url", "RECONCILER_PROVIDER_URL"])
def test_a_provider_url_without_a_scheme_is_refused_when_the_runtime_is_built(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ManagedRuntime(provider_url="localhost:8787")`` was accepted; the first call then
    raised a ``ProviderURLError`` (no ``ValueError``) about ``--provider-url``, a flag of
    the CLI the program never used."""
    monkeypatch.delenv("RECONCILER_PROVIDER_URL", raising=False)
    if source == "provider_url":
        build = lambda: ManagedRuntime(provider_url="localhost:8787")
    else:
        monkeypatch.setenv("RECONCILER_PROVIDER_URL", "localhost:8787")
        build = ManagedRuntime
    with pytest.raises(ValueError) as caught:
        build()
    assert str(caught.value) == (
        f"{source} 'localhost:8787' is not a URL the client can use: it needs an http:// or "
        "https:// scheme and a host (did you mean http://localhost:8787?)"
    )


@pytest.mark.parametrize("url", ["http://[::1", "http://300.1.1.1:8787", "http://xn--.example"])
def test_a_provider_url_whose_host_cannot_be_parsed_is_a_value_error_at_once(url: str) -> None:
    """``ManagedRuntime(provider_url="http://[::1")`` raised urllib's bare "Invalid IPv6 URL"
    (no word of provider_url); an IPv4 address out of range or a malformed punycode label
    was accepted and failed at the first call with httpx's ``InvalidURL``."""
    with pytest.raises(ValueError) as caught:
        ManagedRuntime(provider_url=url)
    assert str(caught.value).startswith(f"provider_url {url!r} is not a URL the client can use")


def test_a_url_given_where_the_config_goes_is_a_type_error_at_once() -> None:
    """``ManagedRuntime("https://api.anthropic.com")`` (the URL as the first argument, which
    is the config) was accepted; the first create then raised "AttributeError: 'str'
    object has no attribute 'agent_body'"."""
    with pytest.raises(
        TypeError, match=r"^config must be a ManagedConfig, not str; .*provider_url="
    ):
        ManagedRuntime("https://api.anthropic.com")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("config", {"model": "claude-sonnet-4-6"}),
        ("provider_url", 8787),
        ("api_key", ["sk-1"]),
        ("project", 7),
        ("backend", 5),
        ("db_path", 5),
        ("lockfile", ["state/reconciler.lock"]),
    ],
)
def test_an_argument_of_the_wrong_type_is_a_type_error_naming_it(keyword: str, value: Any) -> None:
    """``ManagedRuntime(project=7)`` or ``api_key=["sk-1"]`` were kept and failed later, far
    from the call; ``provider_url=8787`` raised "AttributeError: 'int' object has no
    attribute 'strip'"; ``db_path=5`` said only "expected str, bytes or os.PathLike"."""
    with pytest.raises(TypeError, match=rf"^{keyword} must be "):
        ManagedRuntime(**{keyword: value})


async def test_create_with_a_config_of_the_wrong_type_is_a_type_error(provider_db: Path) -> None:
    async with ManagedRuntime(db_path=provider_db) as rt:
        with pytest.raises(TypeError, match=r"^config must be a ManagedConfig, not dict"):
            await rt.create_agent({"model": "claude-sonnet-4-6"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^config must be a ManagedConfig, not str"):
            await rt.create_environment("env")  # type: ignore[arg-type]


async def test_a_missing_api_key_names_what_a_program_sets(
    provider_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program pointed at the real API without a key was told only to "check --api-key",
    a flag of the CLI it never ran (the provider here: the local one, which refuses no key
    as the API does, behind the URL a program gives for the API)."""
    import httpx

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    transport = httpx.ASGITransport(create_app(provider_db))
    rt = ManagedRuntime(provider_url="https://api.anthropic.com", transport=transport)
    try:
        with pytest.raises(AuthenticationError) as caught:
            await rt.list_agents()
    finally:
        await rt.aclose()

    assert str(caught.value).endswith(
        "; check ANTHROPIC_API_KEY (or the command line's --api-key, a program's "
        "ManagedRuntime(api_key=...))"
    )


def test_a_runtimes_repr_never_shows_a_password_in_its_provider_url() -> None:
    """A gateway URL with user info (``https://ci:PASSWORD@gateway/``) was shown whole by
    ``repr(rt)``, which logs and tracebacks print; the client never sends that part."""
    rt = ManagedRuntime(provider_url="https://ci:hunter2@Gateway.example.com/v1/", api_key="k")

    assert repr(rt) == "<ManagedRuntime https://gateway.example.com agent=None session=None>"


# -- lookups of what apply created -----------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return tmp_path


def test_a_lookup_from_another_directory_says_where_it_looked(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python scripts/run.py`` from the project's parent: the lockfile is not there. The
    lookup said "apply the manifests first (`reconciler apply`); it has no agent yet"."""
    elsewhere = applied / "scripts"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(NotApplied) as caught:
        ManagedRuntime().agent("coder")
    message = str(caught.value)
    assert message.startswith("agent.coder: there is no lockfile at state/reconciler.lock")
    assert f"(looked for in {elsewhere})" in message
    assert "lockfile=" in message and "RECONCILER_LOCKFILE" in message and "db_path=" in message
    assert "apply the manifests first" not in message
    # pointed at both, the lookup works from anywhere
    lockfile, db = applied / "state" / "reconciler.lock", applied / ".reconciler" / "provider.db"
    assert ManagedRuntime(lockfile=lockfile, db_path=db).agent("coder").startswith("agent_")


@pytest.mark.parametrize("address", ["coder", "agents.coder", "Agent.coder"])
def test_applied_takes_an_address_and_says_so(applied: Path, address: str) -> None:
    """``applied("coder")`` said "coder is not in the lockfile ...; it has no coder yet"."""
    with pytest.raises(ValueError, match=rf"^'{address}' is not an address: .* 'agent.coder'"):
        ManagedRuntime().applied(address)
    assert ManagedRuntime().applied("vault.github.credential.github-mcp").kind == "credential"


def test_vault_of_a_credential_address_is_refused(applied: Path) -> None:
    """``rt.vault("vault.github.credential.github-mcp")`` returned the credential's vcrd_
    id, which a session's ``vault_ids`` then refused at the provider."""
    rt = ManagedRuntime()
    for name in ("vault.github.credential.github-mcp", "github.credential.github-mcp"):
        with pytest.raises(
            ValueError,
            match=r"^vault.github.credential.github-mcp is a credential address, not a vault "
            r"one: use vault\('github'\)",
        ):
            rt.vault(name)
    assert rt.vault("github").startswith("vlt_")


async def test_an_environment_name_that_apply_manages_points_at_it_not_at_archiving(
    applied: Path,
) -> None:
    """``ManagedConfig(env_name="python-data")``, the name of an environment the manifests
    keep: the ConflictError advised "archive that environment", which would break the
    deployments running in it; it now names the managed address and the lookup to use."""
    from reconciler.errors import ConflictError
    from reconciler.runtime import ManagedConfig

    async with ManagedRuntime(ManagedConfig(env_name="python-data")) as rt:
        with pytest.raises(ConflictError) as caught:
            await rt.create_environment()
        assert rt.environment_id is None
    message = str(caught.value)
    # it read "exists with another networking and packages than this config describes"
    assert "exists, but its networking and packages settings differ from this config's" in message
    assert (
        "`reconciler apply` manages it as environment.python-data (project default): use "
        "runtime.environment('python-data') for its id" in message
    ), message
    assert "archive" not in message


def test_close_names_are_suggested_by_name_not_by_their_kind(applied: Path) -> None:
    """Every agent address starts with "agent.", so any name looked close to the first one:
    ``agent("zzz")`` suggested "did you mean agent.coder?"."""
    rt = ManagedRuntime()
    with pytest.raises(NotApplied, match=r"; it has agent.coder, agent.reviewer$"):
        rt.agent("zzz")
    with pytest.raises(NotApplied, match=r"; did you mean agent.reviewer\?$"):
        rt.agent("reveiwer")
    with pytest.raises(NotApplied, match=r"; did you mean environment.python-data\?$"):
        rt.environment("pyton-data")


def test_a_name_applied_as_another_kind_names_that_kind_not_apply(applied: Path) -> None:
    """``rt.agent("nightly-review")``, the name of the applied deployment (``reconciler run
    nightly-review`` takes it): "agent.nightly-review is not in the lockfile: apply the
    manifests first", which sent the user to apply what was applied. It now names the
    address the name has and the lookup that gives its id."""
    rt = ManagedRuntime()
    with pytest.raises(NotApplied) as caught:
        rt.agent("nightly-review")
    message = str(caught.value)
    assert "apply the manifests first" not in message
    assert message.endswith(
        "; nightly-review is deployment.nightly-review there: use "
        "deployment('nightly-review') for its id"
    ), message
    with pytest.raises(NotApplied, match=r"is skill.review-checklist there: use "):
        rt.agent("review-checklist")  # no skill() lookup: applied(address).id
    with pytest.raises(NotApplied, match=r"applied\('skill.review-checklist'\).id for its id"):
        rt.agent("review-checklist")


def test_a_name_pasted_with_whitespace_around_it_is_that_name(applied: Path) -> None:
    """``rt.agent(os.environ["AGENT"])`` with the variable's trailing newline, or a name
    pasted with a space: "agent.coder  is not in the lockfile ...; did you mean agent.coder?",
    the difference invisible. Names hold no whitespace (as ``run --session`` reads an id):
    the name is looked up without it."""
    rt = ManagedRuntime()
    coder = rt.agent("coder")
    assert rt.agent("coder\n") == rt.agent(" agent.coder ") == coder
    assert rt.applied("agent.coder\n").id == coder


def test_a_lockfile_that_is_a_folder_says_what_a_program_passes(applied: Path) -> None:
    """``ManagedRuntime(lockfile="state")``: "a folder, not a lockfile; pass the lockfile's
    path with --lockfile", a command-line option a program has not got."""
    from reconciler.errors import LockfileError

    with pytest.raises(LockfileError) as caught:
        ManagedRuntime(lockfile="state").agent("coder")
    assert "(in a program: lockfile=)" in str(caught.value), caught.value


async def test_one_vault_id_or_one_resource_where_a_list_goes_is_a_type_error(
    applied: Path,
) -> None:
    """``create_session(..., vault_ids=rt.vault("github"))`` (the lookup gives one id, the
    keyword takes a list) sent each character as a vault id: "404 vault v not found"; one
    resource dict (``resources=rt.memory_store_resource(...)``) failed with "dictionary
    update sequence element #0 has length 1; 2 is required". Both are a TypeError naming
    the keyword, before anything is sent, as ``ManagedConfig`` words them."""
    async with ManagedRuntime() as rt:
        agent, env = rt.agent("coder"), rt.environment("python-data")
        before = len(await rt.list_sessions("all"))
        with pytest.raises(TypeError, match=r"^create_session vault_ids must be a list of str"):
            await rt.create_session(agent, env, vault_ids=rt.vault("github"))
        notes = rt.memory_store_resource("review-notes")
        with pytest.raises(TypeError, match=r"^create_session resources must be a list of obj"):
            await rt.create_session(agent, env, resources=notes)  # type: ignore[arg-type]
        assert len(await rt.list_sessions("all")) == before
        session_id = await rt.create_session(
            agent, env, vault_ids=[rt.vault("github")], resources=[notes]
        )
        assert (await rt.retrieve_session(session_id))["vault_ids"] == [rt.vault("github")]


# -- streams a program leaves behind -------------------------------------------------------


class _OpenStreams:
    """ASGI middleware over the local provider: how many event streams are being served."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.open = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        streaming = scope["type"] == "http" and scope["path"].endswith("/events/stream")
        self.open += streaming
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= streaming


async def _settled(count: Callable[[], int], at_most: int) -> int:
    """``count()`` once it is at most ``at_most``, or after a generous wait (a failure)."""
    for _ in range(500):
        if count() <= at_most:
            break
        await asyncio.sleep(0.01)
    return count()


@pytest.mark.tcp
async def test_breaking_out_of_a_turn_does_not_leave_its_stream_open(tmp_path: Path) -> None:
    """``async for event in rt.run_turn(...): ... break`` (the first answer is enough) left
    the turn's stream open for the runtime's whole life: a bot serving many turns kept one
    connection, and one subscriber at the provider, per turn."""
    served = _OpenStreams(create_app(tmp_path / "provider.db"))
    with BackgroundServer(served) as server:
        async with ManagedRuntime(provider_url=server.url) as rt:
            session_id = await rt.create_session(
                await rt.create_agent(), await rt.create_environment()
            )
            for i in range(8):
                async for event in rt.run_turn(session_id, f"question {i}"):
                    if event["type"] == "agent.message":
                        break  # the answer is all this program wanted
                await rt.send_event(session_id, f"note {i}")
                async for event in rt.stream_events(session_id):
                    break
            assert await _settled(lambda: served.open, 0) == 0

            # a stream the program keeps is not closed behind its back between turns
            stream = await rt.stream_events(session_id, follow=True).open()  # a live tail
            for text in ("one", "two"):
                await rt.send_event(session_id, text)
                async for event in stream:
                    if event["type"] == "session.status_idle":
                        break
                assert stream.is_open
            assert served.open == 1
        assert await _settled(lambda: served.open, 0) == 0
