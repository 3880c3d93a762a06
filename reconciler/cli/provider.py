"""``provider serve``: run the local provider as an HTTP server, with optional fault injection.

The server is ``reconciler.provider.local.serve``; this command only parses its options. The
local provider is imported when the command runs, so other commands never load FastAPI.
"""

from __future__ import annotations

import difflib
import errno
import ipaddress
import math
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from reconciler.app import DEFAULT_DB
from reconciler.cli.app import App, pass_app
from reconciler.cli.failures import EXIT_TERMINATED, fail


class _Rate(click.FloatRange):
    """A FloatRange that also refuses ``nan`` and ``inf``: ``nan`` passes every bound
    check (every comparison with it is false), and neither is a rate."""

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        rate = super().convert(value, param, ctx)
        if not math.isfinite(rate):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rate


def register(group: click.Group) -> None:
    group.add_command(provider)


@click.group()
def provider() -> None:
    """The local provider: a wire-compatible Managed Agents API on SQLite."""


@provider.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="TCP port."
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="SQLite file. Default: the embedded provider's, the global --provider-db "
    f"(RECONCILER_PROVIDER_DB; {DEFAULT_DB}), so that a served provider holds what the "
    "commands without --provider-url made.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Answer every request N ms after it arrived (its handling included).",
)
@click.option(
    "--fault-rate",
    type=_Rate(0.0, 1.0),
    default=0.0,
    show_default=True,
    metavar="P",
    help="Fail this share of requests with a 529 (overloaded) or a dropped connection.",
)
@click.option(
    "--rate-limit",
    type=_Rate(min=0.0, min_open=True),
    default=None,
    metavar="RPS",
    help="Answer 429 (with retry-after) above RPS requests per second.",
)
@click.option(
    "--bucket-limit",
    "bucket_limits",
    multiple=True,
    metavar="BUCKET=RPS",
    help="Answer 429 above RPS requests per second for one rate-limit bucket: the resource "
    "family, creates apart (e.g. 'environments create=1', 'agents=10'). Repeatable.",
)
@click.option(
    "--documented-limits",
    is_flag=True,
    help="Enforce the provider's published per-family limits (agent creates 300/min, "
    "environments 60/min, ...).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    metavar="N",
    help="Seed the random fault injection: the same sequence of requests meets the same "
    "faults (requests sent concurrently, as apply sends them, may arrive in another order).",
)
@pass_app
@click.pass_context
def serve(
    ctx: click.Context,
    app: App,
    host: str,
    port: int,
    db_path: Path | None,
    latency_ms: int,
    fault_rate: float,
    rate_limit: float | None,
    bucket_limits: tuple[str, ...],
    documented_limits: bool,
    seed: int | None,
) -> None:
    """Serve the local provider over HTTP until Ctrl-C.

    Point the CLI at it with --provider-url http://HOST:PORT (or RECONCILER_PROVIDER_URL),
    or the official SDK with base_url. Latency, faults and rate limits are for tests and
    benchmarks of retries.
    """
    from reconciler.provider.local import DOCUMENTED_LIMITS, FaultConfig, rate_buckets
    from reconciler.provider.local import serve as serve_provider

    if db_path is None:  # RECONCILER_PROVIDER_DB set for the project: serve that one
        db_path = app.settings.db_path

    buckets = dict(DOCUMENTED_LIMITS) if documented_limits else {}
    for item in bucket_limits:
        name, sep, rps = item.rpartition("=")
        try:
            rate = float(rps)
        except ValueError:
            rate = 0.0
        if not sep or not name.strip() or not (math.isfinite(rate) and rate > 0):
            raise click.BadParameter(
                f"{item!r}: expected BUCKET=RPS with RPS > 0, e.g. 'environments create=1'",
                param_hint="--bucket-limit",
            )
        known = rate_buckets()
        if name.strip() not in known:
            # a bucket no request falls in would limit nothing, silently
            close = difflib.get_close_matches(name.strip(), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise click.BadParameter(
                f"{item!r}: the provider has no bucket {name.strip()!r}; {hint}"
                f"the buckets are {', '.join(repr(b) for b in sorted(known))}",
                param_hint="--bucket-limit",
            )
        buckets[name.strip()] = rate
    faults = None
    if latency_ms or fault_rate or rate_limit is not None or seed is not None or buckets:
        faults = FaultConfig(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            rate_limit=rate_limit,
            seed=seed,
            bucket_limits=buckets,
        )
    extras = []
    if faults is not None:
        per_bucket = ", ".join(f"{k} {v:g}/s" for k, v in sorted(buckets.items()))
        extras.append(
            f"latency {latency_ms} ms, fault rate {fault_rate}, rate limit "
            f"{'none' if rate_limit is None else f'{rate_limit:g}/s'}"
            + (f" ({per_bucket})" if per_bucket else "")
            + f", seed {seed}"
        )
    port = _free_port(host, port)
    if not _is_loopback(host):
        click.echo(
            "Warning: the local provider has no authentication (it takes any API key): "
            f"anyone who can reach {host}:{port} can read and change every agent, vault and credential in {db_path}. "
            "Listen on 127.0.0.1 (the default) unless this network is trusted.",
            err=True,
        )
    # an IPv6 literal goes in brackets, or the URL cannot be parsed (RFC 3986)
    url_host = f"[{host}]" if ":" in host else host
    listening = f"Local provider listening on http://{url_host}:{port} (db: {db_path})" + (
        f" [{extras[0]}]" if extras else ""
    )
    from reconciler.provider.local.store import StoreError

    terminated = False
    try:
        with _sigterm_as_an_exception():
            serve_provider(
                host=host,
                port=port,
                db_path=db_path,
                faults=faults,
                ready=lambda: click.echo(listening, err=True),  # the database open, the port bound
            )
    except KeyboardInterrupt:
        pass
    except _Terminated:
        terminated = True
    except OSError as exc:  # taken since _free_port looked
        _cannot_listen(host, port, exc)
    except StoreError as exc:
        # the store's advice names the global --provider-db; this command's flag is --db
        fail(str(exc).replace("--provider-db", "--db"))
    click.echo("Local provider stopped.", err=True)
    if terminated:
        ctx.exit(EXIT_TERMINATED)


class _Terminated(Exception):
    """SIGTERM arrived (``_sigterm_as_an_exception``)."""


@contextmanager
def _sigterm_as_an_exception() -> Iterator[None]:
    """SIGTERM as an exception, so that it ends ``serve`` as Ctrl-C does (exit 143, as
    every command does). Uvicorn handles SIGTERM while it serves, shuts down gracefully,
    then raises the signal again for the handler it found: the default one killed the
    process there, saying nothing."""

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (a test driving the command)
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (``0.0.0.0`` is not)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _free_port(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host`` (a free one for 0), else stop with a sentence.

    Checked before serving so that a busy port is told plainly instead of after a
    "listening" line that would send clients to whoever holds the port.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            return int(probe.getsockname()[1])
    except OSError as err:
        _cannot_listen(host, port, err)


def _cannot_listen(host: str, port: int, err: OSError) -> NoReturn:
    """Stop with what the user can do about ``err``: only a busy port wants another --port."""
    if isinstance(err, socket.gaierror):
        advice = "no address has that name: check --host"
    elif err.errno == errno.EADDRNOTAVAIL:
        advice = "no network interface of this machine has that address: check --host"
    elif err.errno == errno.EACCES:
        advice = "ports below 1024 need privileges: pick another with --port"
    else:
        advice = "another process may be using it: pick another with --port"
    fail(f"cannot listen on {host}:{port} ({err.strerror or err}); {advice}")
