"""Layer 1: the ``reconciler`` command line, a thin click shell over ``reconciler.app``.

Each command parses its flags, calls the library, renders the result and sets the exit code;
nothing here decides what should change. Errors are told by one handler
(``failures.ReconcilingGroup``): ``Error: <message>`` on stderr, exit 1, ``--debug`` for the
traceback. Progress and prompts go to stderr on a terminal only (``terminal``).

Modules, each registering its commands with ``register(group: click.Group) -> None``:

    planning.py   validate, plan, apply
    state.py      state list | show | rm, unlock
    schema.py     schema
    provider.py   provider serve
    run.py        run AGENT|DEPLOYMENT -m TEXT
    gitops.py     (optional, owned by another team) drift, import, fmt ...

A module added later joins the CLI the same way: define ``register(group)`` and add it to
``COMMAND_MODULES`` (``gitops`` is picked up automatically when it exists).
"""

from __future__ import annotations

import reconciler.cli.starting  # first: a Ctrl-C while `python -m reconciler.cli` starts
import importlib
import logging
import os
import re
import unicodedata
from pathlib import Path

import click

import reconciler
from reconciler.app import DEFAULT_DB, Settings
from reconciler.cli.app import App
from reconciler.cli.failures import ReconcilingGroup, write_stdout_whole
from reconciler.kinds import DEFAULT_LOCKFILE, DEFAULT_MANIFESTS

#: Modules of this package whose ``register(group)`` adds commands, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = ("planning", "rollback", "state", "schema", "provider", "run")
#: Optional modules: registered when present, silently skipped when absent.
OPTIONAL_MODULES: tuple[str, ...] = ("gitops",)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


#: longest ``--project``: it is a metadata value (the provider takes 512) printed in plans
MAX_PROJECT_LENGTH = 128


def _checked_project(value: str) -> str:
    """``--project`` as given, or a usage error saying what a project name may be."""
    problem = None
    if not value:
        problem = "must not be empty; pass a project name (the default is 'default')"
    elif len(value) > MAX_PROJECT_LENGTH:
        problem = (
            f"is {len(value)} characters long; a project name has at most "
            f"{MAX_PROJECT_LENGTH} (it is stamped on every resource's metadata)"
        )
    elif value != value.strip():
        problem = "must not start or end with spaces"
    elif any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value):
        problem = "must not contain control or invisible characters"
    if problem is not None:
        raise click.BadParameter(
            f"{problem} (also read from RECONCILER_PROJECT)", param_hint="'--project'"
        )
    return value


def _checked_backend(value: str | None) -> str | None:
    """``--backend`` as given, or a usage error saying what it takes (never echoing it)."""
    from reconciler.app.workspace import check_backend
    from reconciler.errors import LockfileError

    if value == "":  # ``--backend "$DB"`` with DB unset; an empty variable means unset
        raise click.BadParameter(
            "an empty connection string; give the PostgreSQL state's, or leave the option "
            "out to keep the state in the lockfile (also read from RECONCILER_BACKEND)",
            param_hint="'--backend'",
        )
    try:
        return check_backend(value)
    except LockfileError:
        raise click.BadParameter(
            "takes a PostgreSQL connection string (postgresql://USER@HOST:PORT/DBNAME, or "
            "libpq's key=value words); leave it unset to keep the state in the lockfile (also "
            "read from RECONCILER_BACKEND)",
            param_hint="'--backend'",
        ) from None


def _checked_provider_url(value: str | None) -> str | None:
    """``--provider-url`` as given, or a usage error for an empty one (``--provider-url
    "$URL"`` with URL unset, which would talk to the embedded local provider instead; an
    empty RECONCILER_PROVIDER_URL means unset, and is warned about)."""
    if value == "":
        raise click.BadParameter(
            "an empty URL; give the provider's base URL, or leave the option out for the "
            f"embedded local provider in {DEFAULT_DB} (also read from RECONCILER_PROVIDER_URL)",
            param_hint="'--provider-url'",
        )
    return value


def _checked_path(value: str, param: click.Parameter, wanted: str) -> Path:
    """A path option (``--manifests``, ``--lockfile``, ``--provider-db``) as given, or a usage
    error for an empty one, saying to give ``wanted`` instead: click reads ``""`` as the
    current folder (``-f "$DIR"`` with DIR unset: every YAML file below it); an empty
    variable means unset. Read as a string, since ``Path("")`` is ``Path(".")``: ``-f .``
    is the current folder, given on purpose."""
    if value == "":
        raise click.BadParameter(
            f"an empty path; give {wanted} (also read from {param.envvar})",
            param_hint=param.opts,  # not param=: click 8.4 would name the variable twice
        )
    return Path(value)


def _checked_lockfile(value: str, param: click.Parameter) -> Path:
    """``--lockfile`` as given, or a usage error for an empty one or a URL."""
    path = _checked_path(value, param, f"the lockfile's path, e.g. {DEFAULT_LOCKFILE}")
    if _URL_LIKE.match(str(value)):
        # a database URL in the lockfile's variable: never a path, never echoed (a password)
        raise click.BadParameter(
            "a URL, not a lockfile's path; a PostgreSQL state is given with --backend "
            f"(RECONCILER_BACKEND). Give the lockfile's path, e.g. {DEFAULT_LOCKFILE} (also "
            "read from RECONCILER_LOCKFILE)",
            param_hint="'--lockfile'",
        )
    return path


#: ``postgresql://...`` as click's Path leaves it (``postgresql:/...``): a URL's scheme
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(?::[A-Za-z][A-Za-z0-9+.-]*)*:/")


@click.group(cls=ReconcilingGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--manifests",
    "-f",
    type=click.Path(path_type=str),
    default=str(DEFAULT_MANIFESTS),
    envvar="RECONCILER_MANIFESTS",
    show_envvar=True,
    show_default=True,
    callback=lambda _ctx, param, value: _checked_path(
        value, param, f"the manifests directory or file, e.g. {DEFAULT_MANIFESTS}"
    ),
    help="Directory (searched recursively) or file of YAML manifests.",
)
@click.option(
    "--lockfile",
    type=click.Path(path_type=str, dir_okay=False),
    default=str(DEFAULT_LOCKFILE),
    envvar="RECONCILER_LOCKFILE",
    show_envvar=True,
    show_default=True,
    callback=lambda _ctx, param, value: _checked_lockfile(value, param),
    help="The lockfile that records what apply did; commit it next to the manifests.",
)
@click.option(
    "--backend",
    default=None,
    envvar="RECONCILER_BACKEND",
    show_envvar=True,
    metavar="URL",
    callback=lambda _ctx, _param, value: _checked_backend(value),
    help="Keep the state in PostgreSQL (postgresql://USER@HOST:PORT/DB, or libpq key=value "
    "words) instead of the lockfile, for teams with many CI runners. Passwords are never "
    "printed. Default: the lockfile.",
)
@click.option(
    "--project",
    default="default",
    envvar="RECONCILER_PROJECT",
    show_envvar=True,
    show_default=True,
    callback=lambda _ctx, _param, value: _checked_project(value),
    help="Project name stamped on every resource, so repositories can share a workspace "
    f"(1 to {MAX_PROJECT_LENGTH} printable characters).",
)
@click.option(
    "--provider-url",
    default=None,
    envvar="RECONCILER_PROVIDER_URL",
    show_envvar=True,
    metavar="URL",
    callback=lambda _ctx, _param, value: _checked_provider_url(value),
    help=f"Base URL of the provider API. Default: the embedded local provider in {DEFAULT_DB}.",
)
@click.option(
    "--provider-db",
    type=click.Path(path_type=str, dir_okay=False),
    default=str(DEFAULT_DB),
    envvar="RECONCILER_PROVIDER_DB",
    show_envvar=True,
    show_default=True,
    callback=lambda _ctx, param, value: _checked_path(
        value, param, f"the embedded provider's database file, e.g. {DEFAULT_DB}"
    ),
    help="SQLite file of the embedded local provider (ignored with --provider-url).",
)
@click.option(
    "--api-key",
    default=None,
    envvar="ANTHROPIC_API_KEY",
    show_envvar=True,
    show_default=False,
    metavar="KEY",
    help="API key, sent as x-api-key. Never printed. A local provider (embedded, or on "
    "127.0.0.1) needs none.",
)
@click.option("--debug", is_flag=True, help="Log debug details and show tracebacks of errors.")
@click.version_option(reconciler.__version__, "--version", "-V", prog_name="reconciler")
@click.pass_context
def main(
    ctx: click.Context,
    manifests: Path,
    lockfile: Path,
    backend: str | None,
    project: str,
    provider_url: str | None,
    provider_db: Path,
    api_key: str | None,
    debug: bool,
) -> None:
    """Keep managed agents, environments, vaults and deployments as YAML in git.

    \b
    Typical use:
      reconciler validate              check the manifests (no network)
      reconciler plan                  see what apply would change, and why
      reconciler apply                 converge the provider to the manifests
      reconciler run coder -m "hi"     talk to an applied agent or deployment

    Without --provider-url everything runs against the embedded local provider, so you can
    try it with no account. The options below may also follow the command
    (`reconciler plan -f desired`).
    """
    write_stdout_whole()  # a reader that leaves mid-write ends the command with 141
    if debug:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log = logging.getLogger("reconciler")
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
        ctx.call_on_close(lambda: log.removeHandler(handler))
    source = ctx.get_parameter_source("lockfile")
    if backend is not None and source not in (None, click.core.ParameterSource.DEFAULT):
        # both given (RECONCILER_LOCKFILE left in a CI environment, say): the database wins
        given = (
            f"RECONCILER_LOCKFILE={lockfile}"
            if source == click.core.ParameterSource.ENVIRONMENT
            else f"--lockfile {lockfile}"
        )
        click.echo(
            f"Warning: {given} is not used: with --backend the state is kept "
            "in the database (reconciler state migrate moves a lockfile there).",
            err=True,
        )
    if backend is None and "RECONCILER_BACKEND" in os.environ:
        # set but empty: in CI, `RECONCILER_BACKEND: ${{ secrets.DB }}` with the secret
        # missing. Empty means unset (as for every variable); said, as the state differs.
        click.echo(
            f"Warning: RECONCILER_BACKEND is set but empty (a missing CI secret?); the state "
            f"is the lockfile {lockfile}.",
            err=True,
        )
    if os.environ.get("RECONCILER_PROJECT") == "" and (
        ctx.get_parameter_source("project") == click.core.ParameterSource.DEFAULT
    ):
        # as RECONCILER_BACKEND: a missing CI variable, said, as whose state it is differs
        click.echo(
            f"Warning: RECONCILER_PROJECT is set but empty (a missing CI variable?); the "
            f"project is {project!r}.",
            err=True,
        )
    if backend is None and os.environ.get("RECONCILER_LOCKFILE") == "" and source in (
        None,
        click.core.ParameterSource.DEFAULT,
    ):
        click.echo(
            "Warning: RECONCILER_LOCKFILE is set but empty (a missing CI variable?); the state "
            f"is the lockfile {lockfile}.",
            err=True,
        )
    if provider_url is None and "RECONCILER_PROVIDER_URL" in os.environ:
        # as RECONCILER_BACKEND above: a missing CI secret, said, as the provider differs
        click.echo(
            "Warning: RECONCILER_PROVIDER_URL is set but empty (a missing CI secret?); the "
            f"provider is the embedded local one in {provider_db}.",
            err=True,
        )
    settings = Settings(
        manifests=manifests,
        lockfile=lockfile,
        project=project,
        provider_url=provider_url or None,
        api_key=api_key or None,
        db_path=provider_db,
        backend=backend,
    )
    ctx.obj = App(settings=settings, debug=debug)


def _register_all(group: click.Group) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(group)
    for name in OPTIONAL_MODULES:
        full = f"{__name__}.{name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as err:
            if err.name != full:  # the module exists but something it imports does not
                raise
            continue
        module.register(group)


_register_all(main)

__all__ = ["App", "main"]
