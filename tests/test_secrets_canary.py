"""Secret canaries: no secret value ever leaves the provider request that needs it.

Every secret of the manifests (credential tokens, OAuth access and refresh tokens, a client
secret, an environment-variable credential, a repository token; from the environment and
from files) and the ``--api-key`` hold unique canary strings. Then every command runs -
validate, plan in every format, ``plan --out``, apply of the saved plan, a rotation applied
with ``--debug``, drift in every format, state list/show, import of an unmanaged vault, run,
fmt, schema, unlock, and failing runs (a missing variable, a provider that rejects every
credential write and one that echoes the request back in its error) - with logging captured
at DEBUG. No canary may appear, raw or base64 / hex / unsalted-sha256 encoded, in:

* stdout or stderr of any command, or any log record;
* the lockfile, its backup, the saved plan, or any other file under the work folder
  (except the provider's SQLite database, which stores secrets by design; the API key may
  not appear even there).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.reliability import BETA, RECONCILER_VARS, provider

from reconciler.cli import main

TAG = uuid.uuid4().hex[:10]
CANARIES = {
    "CANARY_BEARER": f"cnry-bearer-{TAG}",
    "CANARY_ACCESS": f"cnry-access-{TAG}",
    "CANARY_REFRESH": f"cnry-refresh-{TAG}",
    "CANARY_GH": f"cnry-ghtoken-{TAG}",
}
FILE_CANARIES = {
    "secrets/api-key.txt": f"cnry-file-apikey-{TAG}",
    "secrets/client-secret.txt": f"cnry-file-client-{TAG}",
}
ROTATED = {"CANARY_BEARER": f"cnry-rotated-bearer-{TAG}"}
ROTATED_FILE = {"secrets/api-key.txt": f"cnry-rotated-file-{TAG}"}
API_KEY = f"cnry-apikey-sk-ant-{TAG}"
UNMANAGED = f"cnry-unmanaged-{TAG}"
ALL = [
    *CANARIES.values(),
    *FILE_CANARIES.values(),
    *ROTATED.values(),
    *ROTATED_FILE.values(),
    API_KEY,
    UNMANAGED,
]

MANIFESTS = {
    "agents.yaml": """\
kind: Agent
name: canary-agent
spec:
  model: claude-sonnet-4-6
  system: You keep secrets.
  tools:
    - type: mcp_toolset
      mcp_server_name: tools
  mcp_servers:
    - {type: url, name: tools, url: "https://tools.example.com/mcp"}
""",
    "environments.yaml": """\
kind: Environment
name: canary-env
spec: {description: where secrets are used}
""",
    "vaults.yaml": """\
kind: Vault
name: canary-vault
spec:
  display_name: Canary vault
  credentials:
    - name: bearer
      auth:
        type: static_bearer
        mcp_server_url: https://tools.example.com/mcp
        token: {from_env: CANARY_BEARER}
    - name: envvar
      auth:
        type: environment_variable
        secret_name: SERVICE_API_KEY
        secret_value: {from_file: secrets/api-key.txt}
        networking: {type: limited, allowed_hosts: [api.example.com]}
    - name: oauth
      auth:
        type: mcp_oauth
        mcp_server_url: https://oauth.example.com/mcp
        access_token: {from_env: CANARY_ACCESS}
        expires_at: "2030-01-01T00:00:00Z"
        refresh:
          client_id: canary-client
          refresh_token: {from_env: CANARY_REFRESH}
          token_endpoint: https://oauth.example.com/token
          token_endpoint_auth:
            type: client_secret_post
            client_secret: {from_file: secrets/client-secret.txt}
""",
    "deployments.yaml": """\
kind: Deployment
name: canary-dep
spec:
  agent: canary-agent
  environment: canary-env
  vaults: [canary-vault]
  resources:
    - type: github_repository
      url: https://github.com/example/repo
  initial_events:
    - type: user.message
      content: [{type: text, text: keep it secret}]
""",
}


def encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "raw": value,
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "sha256-b64": base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("="),
        "reversed": value[::-1],
    }


NEEDLES = {f"{c} ({kind})": text for c in ALL for kind, text in encodings(c).items()}


def leaks(text: str) -> list[str]:
    return [name for name, needle in NEEDLES.items() if needle in text]


class Session:
    """Runs commands in-process and keeps everything they printed."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.outputs: list[tuple[str, str]] = []

    def __call__(
        self, *args: str, code: int | tuple[int, ...] = 0, env: dict[str, str] | None = None
    ) -> Result:
        full = ["--api-key", API_KEY, *args]
        result = CliRunner().invoke(main, full, catch_exceptions=True, env=env)
        label = " ".join(args)
        self.outputs.append((label, result.stdout + "\n" + result.stderr))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # --debug re-raises: the traceback is output too
            import traceback

            tb = "".join(traceback.format_exception(result.exception))
            self.outputs.append((label + " (traceback)", tb))
        expected = code if isinstance(code, tuple) else (code,)
        assert result.exit_code in expected, (label, result.exit_code, result.stdout, result.stderr)
        return result


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "manifests" / "secrets").mkdir(parents=True)
    for name, text in MANIFESTS.items():
        (tmp_path / "manifests" / name).write_text(text)
    for rel, value in FILE_CANARIES.items():
        (tmp_path / "manifests" / rel).write_text(value + "\n")
    monkeypatch.chdir(tmp_path)
    for var in RECONCILER_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in CANARIES.items():
        monkeypatch.setenv(var, value)
    yield tmp_path


def scan_files(work: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(work.rglob("*")):
        if not path.is_file() or path.parent == work / "manifests" / "secrets":
            continue  # (the secrets' own files)
        data = path.read_bytes()
        if path.name.startswith("provider.db"):
            # the provider stores credential secrets by design; never the API key
            names = [n for n in leaks(data.decode("latin-1")) if n.startswith(API_KEY)]
        else:
            names = leaks(data.decode("utf-8", errors="replace")) + leaks(data.decode("latin-1"))
        if names:
            found[str(path.relative_to(work))] = sorted(set(names))
    return found


async def _oob(db: Path, fn: Any) -> Any:
    from reconciler.provider import embedded_client

    async with embedded_client(db) as client:
        return await fn(client)


def test_no_secret_appears_anywhere(
    work: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    run = Session(work)
    db = work / ".reconciler" / "provider.db"

    run("validate")
    for fmt in ("text", "json", "markdown"):
        run("plan", "--format", fmt)
    run("plan", "--detailed-exitcode", code=2)
    run("plan", "--out", "plan.json")
    run("--debug", "apply", "plan.json")
    run("plan", "--detailed-exitcode")
    assert (work / "plan.json").exists() and (work / "state/reconciler.lock").exists()

    # rotate two secrets: the plan shows sensitive updates, a --debug apply writes them
    for var, value in ROTATED.items():
        monkeypatch.setenv(var, value)
    for rel, value in ROTATED_FILE.items():
        (work / "manifests" / rel).write_text(value + "\n")
    for fmt in ("text", "json", "markdown"):
        run("plan", "--format", fmt, "--detailed-exitcode", code=2)
    run("plan", "--out", "rotation.json")
    run("--debug", "apply", "--auto-approve")
    run("plan", "--detailed-exitcode")

    # drift, after a console edit of a credential and of the agent
    lock = json.loads((work / "state/reconciler.lock").read_text())["resources"]
    cred = lock["vault.canary-vault.credential.bearer"]

    async def edit(client: Any) -> None:
        await client.credentials.update(
            cred["parent_id"], cred["id"], {"display_name": "edited in the console"}
        )
        agent = await client.agents.retrieve(lock["agent.canary-agent"]["id"])
        await client.agents.update(
            agent["id"], {"version": agent["version"], "description": "console"}
        )

    asyncio.run(_oob(db, edit))
    for fmt in ("text", "json", "markdown"):
        run("drift", "--format", fmt, code=2)

    run("state", "list")
    for address in lock:
        run("state", "show", address)

    # an unmanaged vault whose credential holds a secret: import writes manifests for it
    async def unmanaged(client: Any) -> None:
        vault = await client.vaults.create({"display_name": "found-in-the-wild"})
        await client.credentials.create(
            vault["id"],
            {
                "display_name": "wild",
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://wild.example.com/mcp",
                    "token": UNMANAGED,
                },
            },
        )

    asyncio.run(_oob(db, unmanaged))
    run("import", "--all-unmanaged", "--out", "imported", code=(0, 1))
    assert list((work / "imported").glob("*.yaml")), "import wrote no manifests"
    run("plan", code=(0, 1))

    run("run", "canary-agent", "-m", "what is the token?")
    run("run", "canary-dep", "-m", "and now?", "--json")
    run("fmt", "--check", code=(0, 1))
    run("schema")
    run("unlock", "deadbeef", code=1)

    # failures: a missing variable, then providers that refuse credential writes
    monkeypatch.delenv("CANARY_ACCESS")
    run("plan", code=1)
    run("--debug", "plan", code=1)
    monkeypatch.setenv("CANARY_ACCESS", CANARIES["CANARY_ACCESS"])
    for behaviour in ("500", "echo"):
        with provider(
            work / f"{behaviour}.db", wrap=lambda app, b=behaviour: RefuseCredentials(app, b)
        ) as (url, _tap):
            other = ("--lockfile", f"state/{behaviour}.lock", "--provider-url", url)
            run(*other, "apply", "--auto-approve", code=1)
            run("--debug", *other, "apply", "--auto-approve", code=1)

    # the failing applies did reach the credential writes, and said why they failed
    refused = [text for label, text in run.outputs if "--provider-url" in label]
    assert all("vault.canary-vault.credential." in text for text in refused), refused
    assert any("invalid credential" in text for text in refused), refused
    # what was printed or logged
    printed = {label: leaks(text) for label, text in run.outputs if leaks(text)}
    logged = leaks(caplog.text) + [
        n for r in caplog.records for n in leaks(str(r.msg) + repr(r.args))
    ]
    files = scan_files(work)
    assert not printed, f"secrets printed: {printed}"
    assert not logged, f"secrets logged: {sorted(set(logged))}"
    assert not files, f"secrets written to files: {files}"
    # and the saved plans do mention the sensitive changes, without values
    assert (
        "sensitive" in (work / "rotation.json").read_text()
        or "secret" in (work / "rotation.json").read_text()
    )


class RefuseCredentials:
    """A provider that refuses every credential write: with a 500, or with a 400 whose
    message quotes the request body (as some APIs do)."""

    def __init__(self, app: Any, behaviour: str) -> None:
        self.app, self.behaviour = app, behaviour

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and re.search(r"/credentials(/[^/]+)?$", scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = 500 if self.behaviour == "500" else 400
        text = "internal error" if status == 500 else f"invalid credential: {body.decode()}"
        payload = json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "api_error" if status == 500 else "invalid_request_error",
                    "message": text,
                },
                "request_id": "req_canary",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"request-id", b"req_canary"),
                    (b"x-should-retry", b"false"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def test_the_scan_finds_what_it_looks_for() -> None:
    """The detector is not vacuous: each encoding of a canary is found."""
    for value in (CANARIES["CANARY_BEARER"], API_KEY):
        for kind, text in encodings(value).items():
            assert leaks(f"xx {text} yy"), kind
    assert not leaks("nothing to see " + BETA)


REPO_TOKEN_DEPLOYMENT = """\
kind: Deployment
name: with-repo
spec:
  agent: canary-agent
  environment: canary-env
  resources:
    - type: github_repository
      url: https://github.com/example/repo
      authorization_token: {from_env: CANARY_GH}
  initial_events:
    - type: user.message
      content: [{type: text, text: clone it}]
"""


def test_a_deployment_repository_token_is_applied_and_never_shown(
    work: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    (work / "manifests" / "deployments.yaml").write_text(REPO_TOKEN_DEPLOYMENT)
    run = Session(work)
    run("plan", "--format", "json", code=0)
    run("apply", "--auto-approve", code=0)
    run("plan", "--detailed-exitcode", code=0)
    # a rotated token is a (sensitive) change, applied once
    monkeypatch.setenv("CANARY_GH", ROTATED["CANARY_BEARER"])
    rotated = run("plan", "--detailed-exitcode", code=2)
    assert "deployment.with-repo" in rotated.stdout
    run("--debug", "apply", "--auto-approve", code=0)
    run("plan", "--detailed-exitcode", code=0)
    printed = {label: leaks(text) for label, text in run.outputs if leaks(text)}
    assert not printed and not leaks(caplog.text) and not scan_files(work)
