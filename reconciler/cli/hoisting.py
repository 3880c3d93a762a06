"""Global options after the command: ``reconciler plan -f desired`` is ``reconciler -f desired plan``.

DESIGN.md: global options are accepted before or after the command. click parses a group's
options only before the command name, so ``ReconcilingGroup.parse_args`` first moves the
group's options that follow the command in front of it (``hoist_global_options``), and a
mistyped one is suggested from both sets (``suggest_options``). Nothing here runs a command.
"""

from __future__ import annotations

import difflib

import click

#: Options of the group that stay where they are: after a command they mean its own help.
#: (``--version`` moves: ``reconciler plan --version`` prints the version, as before it.)
_NOT_HOISTED = frozenset({"--help", "-h"})


def _option_table(command: click.Command, ctx: click.Context) -> dict[str, bool]:
    """Every option string of ``command`` -> whether it takes a value."""
    table: dict[str, bool] = {}
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            takes = not param.is_flag and not param.count
            for opt in (*param.opts, *param.secondary_opts):
                table[opt] = takes
    return table


def _split_option(token: str, table: dict[str, bool]) -> tuple[str, bool] | None:
    """(option, value attached) when ``token`` is an option of ``table``, else None."""
    if token in table:
        return token, False
    if token.startswith("--") and "=" in token:
        name = token.split("=", 1)[0]
        return (name, True) if name in table else None
    if token.startswith("-") and not token.startswith("--") and len(token) > 2:
        name = token[:2]  # -fdir: a short option with its value attached
        return (name, True) if table.get(name) else None
    return None


def _option_tokens(args: list[str], i: int, table: dict[str, bool]) -> list[str] | None:
    """The tokens the option at ``args[i]`` spans if ``table`` defines it: the option, and
    the next token too when it takes a value not attached to it; None otherwise."""
    split = _split_option(args[i], table)
    if split is None:
        return None
    name, attached = split
    takes_next = table[name] and not attached and i + 1 < len(args)
    return args[i : i + 2] if takes_next else args[i : i + 1]


def hoist_global_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the group's options moved in front of the command, so that
    ``reconciler plan --project x`` means ``reconciler --project x plan`` (DESIGN.md: global
    options are accepted before or after the command).

    An option the command (or a subcommand of it) defines itself stays its own; ``--help``
    stays where it is; nothing after ``--`` moves. A global option that takes a value but
    ends the line without one is a usage error (moved, it would take the command's name as
    its value). An option given both before and after the command: the later one wins, as
    when repeated in place.

    Raises:
        click.BadOptionUsage: a global option that takes a value ends ``args`` without it.
    """
    globals_ = {k: v for k, v in _option_table(group, ctx).items() if k not in _NOT_HOISTED}
    head: list[str] = []
    i = 0
    while i < len(args):  # the group's own options, up to the command name
        token = args[i]
        if token == "--" or not token.startswith("-") or token == "-":
            break
        tokens = _option_tokens(args, i, globals_) or [token]
        head.extend(tokens)
        i += len(tokens)
    if i >= len(args) or args[i] == "--":
        return args
    command: click.Command | None = group
    hoisted: list[str] = []
    rest: list[str] = []
    own: dict[str, bool] = {}
    while i < len(args):
        token = args[i]
        if token == "--":
            rest.extend(args[i:])
            break
        if not token.startswith("-") or token == "-":
            if isinstance(command, click.Group):
                command = command.get_command(ctx, token)
                own = _option_table(command, ctx) if command is not None else {}
            rest.append(token)
            i += 1
            continue
        mine = _option_tokens(args, i, own)
        theirs = _option_tokens(args, i, globals_) if mine is None else None
        if theirs is not None:
            if i + 1 == len(args) and args[i] in globals_ and globals_[args[i]]:
                # last, with no value: moved in front, it would take the command as its value
                raise click.BadOptionUsage(
                    args[i], f"Option '{args[i]}' requires an argument.", ctx=ctx
                )
            hoisted.extend(theirs)
            i += len(theirs)
        else:
            tokens = mine or [token]  # its own option, or one click reports as unknown
            rest.extend(tokens)
            i += len(tokens)
    return head + hoisted + rest


def suggest_options(group: click.Group, ctx: click.Context, err: click.NoSuchOption) -> list[str]:
    """The closest option to a mistyped one after a command (``plan --projct``), from the
    command's options and the global ones together, not the command's alone."""
    command_ctx = err.ctx or ctx
    known = set(_option_table(command_ctx.command, command_ctx))
    known |= {k for k in _option_table(group, ctx) if k not in _NOT_HOISTED}
    # compared without their dashes, which every option shares: with them `--bogus` was
    # "close" to `--out` and `--policies` to `--lockfile`
    by_name = {k.lstrip("-"): k for k in sorted(known, key=len, reverse=True)}
    close = difflib.get_close_matches(err.option_name.lstrip("-"), sorted(by_name), n=1)
    return [by_name[name] for name in close]


__all__ = ["hoist_global_options", "suggest_options"]
