"""``run AGENT|DEPLOYMENT -m TEXT``: start (or continue) a session and stream its events.

The session uses what apply recorded: the agent id and version from the lockfile (for a
deployment, the version its lockfile entry pinned, or the one a killed pin move left live),
the environment and vault ids of the deployment (for an agent, the only Environment of the
manifests or ``--environment``).
Sessions are run through ``reconciler.runtime.ManagedRuntime`` over the CLI's client.

Output: agent text and tool calls on stdout, status lines on stderr (so ``> out.txt`` keeps
the conversation); ``--json`` prints every event as one JSON line on stdout instead.
Exit codes: 0 when the turn ends with ``end_turn``, 1 on ``session.error`` or any other end,
130 after Ctrl-C (which first sends ``user.interrupt`` so the agent stops), 143 after SIGTERM
(handled the same way). Interrupted while the session is created, the run looks for the
session by the token it put in its metadata and names it, or says what finds it; a create
whose answer was lost (``AmbiguousWriteError``) is looked up the same way, and the turn goes
on in the session found; when the lookup shows none, the create is sent once more with the
same token (at most two creates, and one session: a late first one is deleted); a message whose answer was lost is looked for in the session's
events (``ManagedRuntime.send_event`` settles it) and sent again only when not there. An
event stream that breaks off mid-turn is reopened by the turn (``run_turn``), and run says so
in one line on stderr; one that cannot be reopened ends the run with exit 1, naming the
session to continue (or, when the session was deleted meanwhile, saying so). When the
reader of stdout goes away (``run --json | head -1``) the run stops reading and exits 0
quietly; the agent's turn goes on (continue the session with ``--session``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from reconciler.app import Settings, connect, load_manifests, provider_origin
from reconciler.app.session import (
    RUN_ID_KEY,
    RUN_TITLE,
    HeldPin,
    NotYetApplied,
    SessionTarget,
    check_continued_session,
    check_deployment_exists,
    check_deployment_live,
    check_embedded_provider,
    find_started_session,
    origin_warning,
    resolve_session_target,
    start_session,
)
from reconciler.app.state import Lockfile, state_snapshot
from reconciler.app.unapplied import unapplied_warning
from reconciler.cli.app import App, not_empty, pass_app
from reconciler.cli.failures import EXIT_INTERRUPTED, EXIT_TERMINATED, silence_stdout
from reconciler.errors import (
    AmbiguousWriteError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RunError,
    ServerError,
)
from reconciler.render import should_color
from reconciler.render.values import visible_json, without_controls

#: Sessions can run for a long time between events; the client's default is shorter.
SESSION_TIMEOUT_S = 600.0


def register(group: click.Group) -> None:
    group.add_command(run)


@click.command()
@click.argument("name", metavar="AGENT|DEPLOYMENT", callback=not_empty)
@click.option(
    "-m",
    "--message",
    required=True,
    metavar="TEXT",
    help="What to say to the agent.",
    callback=lambda _ctx, _param, value: _message(value),
)
@click.option("--json", "as_json", is_flag=True, help="Print every event as one JSON line.")
@click.option(
    "--session",
    "session_id",
    metavar="ID",
    help="Continue this session (its id is printed when a run starts) instead of a new one.",
    callback=lambda _ctx, _param, value: _session_id(value),
)
@click.option(
    "--environment",
    metavar="NAME",
    help="For an agent: the Environment to run in (default: the only one in the manifests; "
    "with --session, the session's own).",
)
@pass_app
@click.pass_context
def run(
    ctx: click.Context,
    app: App,
    name: str,
    message: str,
    as_json: bool,
    session_id: str | None,
    environment: str | None,
) -> None:
    """Send the -m TEXT to an applied agent or deployment and stream the session's events.

    \b
    AGENT|DEPLOYMENT is the name of an Agent or Deployment manifest (`coder`, `nightly`)
    or its address (`agent.coder`, `deployment.nightly`, needed when both kinds have the
    name); `reconciler apply` must have created it. Examples:
      reconciler run coder -m "fix the failing test"
      reconciler run coder --session sesn_01... -m "now add a test for it"
      reconciler run nightly-review -m "only look at #42" --json | jq .type

    Exit 0 when the agent ends its turn, 1 on a session error, any other stop reason or
    an error, 130 after Ctrl-C and 143 after SIGTERM (the agent is sent an interrupt
    first; continue later with --session).
    """
    manifests = load_manifests(app.settings.manifests)
    lockfile, written = state_snapshot(app.settings)
    try:
        target = resolve_session_target(
            manifests, lockfile, name, environment, existing_session=session_id is not None
        )
    except NotYetApplied as error:
        if written:
            raise
        # Run from another directory than the project's (or before any apply): saying
        # "agent.coder is not applied yet" would send the user to apply what is applied.
        raise RunError(
            f"there is no state at {app.settings.state_name} (looked for in {Path.cwd()}): "
            "apply the manifests first (`reconciler apply`), or run from the project "
            "directory, or point --lockfile (or --backend) at the state apply wrote"
        ) from error
    except HeldPin as error:
        if session_id is None:  # archived since is what to say first (and it says why)
            app.run(_check_exists(app.settings, error.target))
        raise
    check_embedded_provider(app.settings, lockfile)
    mismatch = origin_warning(
        lockfile, provider_origin(app.settings), Path(app.settings.lockfile).parent
    )
    if mismatch is not None:
        click.echo(f"Warning: {mismatch}", err=True)
    if session_id is None:  # a session continued runs what it was started with
        unapplied = unapplied_warning(manifests, lockfile, target)
        if unapplied is not None:
            click.echo(f"Warning: {unapplied}", err=True)
    printer = _JsonPrinter() if as_json else _TextPrinter()
    outcome = app.run(
        _converse(app.settings, target, message, session_id, printer, lockfile=lockfile)
    )
    if outcome.reader_gone:
        ctx.exit(0)  # `run --json | head -1`: the reader has what it wanted
    if outcome.interrupted and outcome.start is not None:
        click.echo(outcome.start.message(outcome.session_id, name), err=True)
        ctx.exit(EXIT_TERMINATED if app.signals.terminated else EXIT_INTERRUPTED)
    if outcome.interrupted:
        said = f"sent user.interrupt to session {outcome.session_id}"
        if outcome.not_sent is not None:
            said = (
                f"could not send user.interrupt to session {outcome.session_id} "
                f"({without_controls(outcome.not_sent)}): the agent's turn may go on"
            )
        click.echo(
            f"Interrupted: {said}. Continue it "
            f"with: reconciler run {name} --session {outcome.session_id} -m TEXT",
            err=True,
        )
        ctx.exit(EXIT_TERMINATED if app.signals.terminated else EXIT_INTERRUPTED)
    if outcome.problem is not None:
        more = ""
        if outcome.lost:
            more = (
                f"; session {outcome.session_id} may still be running: continue it with: "
                f"reconciler run {name} --session {outcome.session_id} -m TEXT"
            )
        if outcome.gone:
            more = (
                f"; session {outcome.session_id} no longer exists (deleted while the turn "
                f"ran): reconciler run {name} -m TEXT starts a new one"
            )
        # the provider's words (a session error may quote what the agent read): escaped
        click.echo(f"Error: {without_controls(outcome.problem)}{more}", err=True)
        ctx.exit(1)


def _message(value: str) -> str:
    """``-m "$PROMPT"`` with the variable unset would start a session and a turn on nothing."""
    if not value.strip():
        raise click.BadParameter("is empty; say something to the agent", param_hint="'-m'")
    return _utf8(value, "'-m'")


def _utf8(value: str, hint: str) -> str:
    """``value`` when UTF-8 can carry it; a usage error, before any session is started,
    for the bytes of another encoding the shell passed on (``-m "$(cat note-latin1.txt)"``:
    Python holds each such byte as a lone surrogate, which no request can send)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(value[err.start])
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise click.BadParameter(
            f"is not UTF-8 text ({byte} at character {err.start + 1}); save or pass it as UTF-8",
            param_hint=hint,
        ) from None
    return value


def _session_id(value: str | None) -> str | None:
    """``--session ""`` (an unset ``$SESSION``) is a mistake, not "start a new session"; an
    id pasted with the space beside it is that id (ids hold no spaces, and a message about
    ``sesn_1 `` would read as one about ``sesn_1``)."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "is empty; give the session id a run printed (sesn_...), or leave --session out "
            "to start a new session",
            param_hint="'--session'",
        )
    return _utf8(value.strip(), "'--session'") if value is not None else None


@dataclass(frozen=True)
class TurnOutcome:
    #: None: interrupted while the session was created, and no session was found
    session_id: str | None
    problem: str | None = None
    interrupted: bool = False
    #: stdout was closed by its reader (``| head``): stop quietly, leave the turn running
    reader_gone: bool = False
    #: interrupted while the session was created: what finds it (``_StartInterrupted``)
    start: _StartInterrupted | None = None
    #: interrupted, but the ``user.interrupt`` could not be sent: why
    not_sent: str | None = None
    #: the turn's events stopped coming (the provider unreachable): the turn may go on
    lost: bool = False
    #: the session was deleted while its turn ran (its stream could not be opened again)
    gone: bool = False


@dataclass(frozen=True)
class _StartInterrupted:
    """A session create interrupted after it was sent: the provider may have made it."""

    address: str
    agent_id: str
    token: str
    #: when the create was sent (this machine's clock)
    sent_at: datetime

    @property
    def since(self) -> str:
        """A ``created_at[gte]`` bound a little before ``sent_at``: the clocks of this
        machine and the provider's may differ (the token is what is exact)."""
        return (self.sent_at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def message(self, session_id: str | None, name: str) -> str:
        if session_id is not None:
            return (
                f"Found it: session {session_id} of "
                f"{self.address} was created, and nothing was sent to it. Continue it with: "
                f"reconciler run {name} --session {session_id} -m TEXT (or archive it)"
            )
        return (
            f"Not found (yet): the provider may have created a session of {self.address} "
            "all the same. If it did, "
            f"it is a session of agent {self.agent_id} created at about "
            f"{self.sent_at.strftime('%Y-%m-%dT%H:%M:%SZ')}, titled '{RUN_TITLE}{self.address}', "
            f"with the metadata {RUN_ID_KEY}: {self.token} (list them: GET /v1/sessions?"
            f"agent_id={self.agent_id}&created_at[gte]={self.since}, or "
            f"ManagedRuntime.list_sessions(agent_id=..., created_at_gte=...)); continue it "
            f"with: reconciler run {name} --session ID -m TEXT, or archive it"
        )


Printer = Callable[[Mapping[str, Any]], None]


async def _check_exists(settings: Settings, target: SessionTarget) -> None:
    async with connect(settings) as client:
        await check_deployment_exists(client, target)


async def _converse(
    settings: Settings,
    target: SessionTarget,
    message: str,
    session_id: str | None,
    printer: Printer,
    *,
    lockfile: Lockfile | None = None,
) -> TurnOutcome:
    from reconciler.app import ManagedRuntime

    settings = dataclasses.replace(
        settings, client_options={"timeout": SESSION_TIMEOUT_S, **settings.client_options}
    )
    async with connect(settings) as client, ManagedRuntime(client=client) as rt:
        if session_id is None:
            target = await check_deployment_live(client, target, lockfile)
            if target.live_version is not None:
                click.echo(
                    f"Warning: {target.address} runs {target.agent_address}@"
                    f"{target.live_version} at the provider (moved behind git's back); this "
                    f"session runs @{target.agent_version}, the version the lockfile pinned. "
                    "`reconciler drift` shows it, `reconciler apply` puts the pin back",
                    err=True,
                )
            token = secrets.token_hex(8)
            start = _StartInterrupted(target.address, target.agent_id, token, datetime.now(UTC))

            def resending(error: AmbiguousWriteError) -> None:
                click.echo(
                    f"The session create's answer was lost ({without_controls(str(error))}) "
                    "and no session "
                    f"carries its token: creating it once more with the same {RUN_ID_KEY}: "
                    f"{token}",
                    err=True,
                )

            try:
                session_id = await start_session(
                    rt, target, settings.project, token, start.since, on_resend=resending
                )
            except AmbiguousWriteError as error:  # the lookup failed, or twice not made
                raise RunError(f"{error}. {start.message(None, target.address)}") from error
            except ProviderError as error:
                if error.status not in (400, 404, 409):
                    raise
                # The provider names remote ids; the user knows addresses, and the likely
                # cause: something changed behind the lockfile's back.
                raise RunError(
                    f"could not start a session of {target.describe()}: {error}. If it "
                    "was changed outside reconciler, `reconciler drift` shows what and "
                    "`reconciler apply` restores it"
                ) from error
            if session_id is None:  # Ctrl-C (or SIGTERM) while the create was sent
                # said first: a second Ctrl-C during the lookup still leaves the token shown
                click.echo(
                    f"Interrupted while the session was being started; looking for it by "
                    f"its metadata {RUN_ID_KEY}: {token} ...",
                    err=True,
                )
                found = await find_started_session(rt, start.agent_id, start.token, start.since)
                return TurnOutcome(found, interrupted=True, start=start)
            click.echo(
                f"Session {session_id} ({target.describe()}); continue it with "
                f"--session {session_id}",
                err=True,
            )
        else:
            target = await check_continued_session(rt, session_id, target, lockfile)
            click.echo(f"Continuing session {session_id} ({target.describe()})", err=True)
        return await talk(rt, session_id, message, printer)


async def talk(rt: Any, session_id: str, message: str, printer: Printer) -> TurnOutcome:
    """One turn: send ``message``, print events until the turn ends; Ctrl-C interrupts.

    Args:
        rt: an open ``ManagedRuntime`` (anything with ``run_turn`` taking ``on_reconnect``,
            and ``interrupt``).
    """

    def reconnected(error: ProviderError) -> None:
        # the turn did open it again: the stream's own advice to do so is not for the user
        why = str(error).removesuffix("; open it again to keep reading")
        click.echo(f"Reconnected, nothing missed ({without_controls(why)})", err=True)

    turn = rt.run_turn(session_id, message, on_reconnect=reconnected)
    try:
        async for event in turn:
            printer(event)
            end = _ending(event)
            if end is not None:
                return TurnOutcome(session_id, problem=end or None)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        await turn.aclose()
        try:
            await rt.interrupt(session_id)
        except ProviderError as error:  # the provider went away: the turn may go on
            return TurnOutcome(session_id, interrupted=True, not_sent=str(error))
        return TurnOutcome(session_id, interrupted=True)
    except BrokenPipeError:  # the reader left (`| head -1`): not a reason to stop the agent
        await turn.aclose()
        silence_stdout()
        return TurnOutcome(session_id, reader_gone=True)
    except (ProviderConnectionError, ServerError) as error:  # the provider went away
        await turn.aclose()
        return TurnOutcome(session_id, problem=str(error), lost=True)
    except ProviderError as error:  # the cut stream not opened again: a 429 outlasting the
        await turn.aclose()  # client's retries, a 404 (the session deleted meanwhile)
        if not turn.sent:  # refused before the message went: the run's own error
            raise
        if isinstance(error, NotFoundError):
            return TurnOutcome(session_id, problem=str(error), gone=True)
        return TurnOutcome(session_id, problem=str(error), lost=True)
    return TurnOutcome(
        session_id, problem="the event stream ended before the agent's turn did", lost=True
    )


def _stop_reason(event: Mapping[str, Any]) -> str:
    stop = event.get("stop_reason")
    if isinstance(stop, Mapping):
        return str(stop.get("type") or "")
    return str(stop or "")


def _ending(event: Mapping[str, Any]) -> str | None:
    """None: the turn goes on; "": it ended well; else why it ended badly."""
    kind = event.get("type")
    if kind == "session.status_idle":
        reason = _stop_reason(event)
        if reason == "end_turn":
            return ""
        if reason == "requires_action":
            return (
                "the agent waits for a tool confirmation or a custom tool result, which `run` "
                "cannot give; answer it with the runtime API (ManagedRuntime.send_event)"
            )
        return f"the agent stopped: {reason or 'no stop reason given'}"
    if kind == "session.error":
        error = event.get("error")
        text = error.get("message") if isinstance(error, Mapping) else error
        return f"session error: {text or json.dumps(event, sort_keys=True)}"
    if kind in ("session.status_terminated", "session.deleted"):
        return f"the session ended ({kind})"
    return None


class _JsonPrinter:
    def __call__(self, event: Mapping[str, Any]) -> None:
        click.echo(visible_json(json.dumps(event, sort_keys=True, ensure_ascii=False)))


class _TextPrinter:
    """Agent text and tool calls on stdout; status lines on stderr."""

    def __call__(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        match kind:
            case "agent.message":
                click.echo(without_controls(_text_of(event.get("content"))))
            case "agent.thinking":
                _status("(thinking)")
            case "agent.tool_use" | "agent.mcp_tool_use" | "agent.custom_tool_use":
                name = event.get("name") or event.get("tool_name") or "?"
                server = event.get("mcp_server_name")
                where = f"{server}/{name}" if server else name
                click.echo(without_controls(f"[tool] {where} {_short(event.get('input'))}"))
            case "agent.tool_result" | "agent.mcp_tool_result":
                error = " (error)" if event.get("is_error") else ""
                result = _short(_text_of(event.get("content")))
                click.echo(without_controls(f"[tool result{error}] {result}"))
            case "session.status_running":
                _status("... running")
            case "session.status_idle":
                _status(f"... idle ({_stop_reason(event)})")
            case "session.status_rescheduled":  # the status is "rescheduling"
                _status("... rescheduling")
            case "session.error" | "session.status_terminated" | "session.deleted":
                pass  # told once, as the run's error
            case _:
                pass  # user echoes, spans, usage: noise in a terminal (see --json)


def _status(line: str) -> None:
    line = without_controls(line)  # a stop reason is the provider's word
    click.echo(click.style(line, dim=True) if should_color(sys.stderr) else line, err=True)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(block.get("text", ""))
            for block in content
            if isinstance(block, Mapping) and block.get("type") == "text"
        ]
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, sort_keys=True)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
