"""Layer 2: the engine's ``Plan`` and ``DriftReport`` as text, JSON or Markdown.

Renderers are the second interpreter of a plan (apply is the first): they read the same
frozen data and never decide what would change. Text and Markdown pass through
``values.visible``, so bidi and invisible characters show as ``\\uXXXX`` escapes; JSON writes
them with JSON's own escapes, so a parser reads the exact value. They import only the engine's model, pydantic,
rich and the standard library; they never print - the caller writes the returned string.

    render_plan(plan, "text", color=should_color(sys.stdout))   # Terraform-like, for people
    render_plan(plan, "json")                                   # docs/json-format.md, for CI
    render_plan(plan, "markdown")                               # a PR comment, < 65,536 chars

Modules: ``values`` (how one value reads), ``blocks`` (the shapes a reader sees, and the
lines of values), ``outline`` (what a reader sees of a plan or drift report, format-free),
``rollouts`` (how pin moves, held candidates and skill chains read), ``text``, ``markdown``,
``json_format``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from reconciler.engine.model import DriftReport, Plan
from reconciler.render.json_format import FORMAT_VERSION, drift_to_json, dumps, plan_to_json
from reconciler.render.text import (
    DONE,
    drift_text,
    plan_text,
    render_apply_summary,
    should_color,
)
from reconciler.render.values import visible

if TYPE_CHECKING:  # Markdown (and html) loads when asked for: apply never is
    from reconciler.render.markdown import GITHUB_COMMENT_LIMIT

Format = Literal["text", "json", "markdown"]

#: The formats ``--format`` accepts, in the order ``--help`` lists them.
FORMATS: tuple[Format, ...] = ("text", "json", "markdown")


def render_plan(
    plan: Plan, fmt: Format, *, color: bool = False, width: int = 100, full: bool = False
) -> str:
    """The plan in ``fmt``, ending with a newline.

    Args:
        plan: what apply would do.
        fmt: ``text`` (Terraform-like), ``json`` (``docs/json-format.md``) or ``markdown``.
        color: ANSI colour in ``text``; ignored by the other formats. See ``should_color``.
        width: the line width ``text`` and ``markdown`` lay field changes out for; lines
            are never wrapped.
        full: ``text`` and ``markdown`` show every value and diff whole (by default long
            ones are shortened, and Markdown keeps within a GitHub comment); ``json`` is
            always whole.

    Raises:
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    return _in_format(
        fmt,
        text=lambda: plan_text(plan, color=color, width=width, full=full),
        as_json=lambda: plan_to_json(plan),
        markdown=lambda: _markdown_plan(plan, width=width, full=full),
    )


def render_drift(
    report: DriftReport, fmt: Format, *, color: bool = False, width: int = 100, full: bool = False
) -> str:
    """The drift report in ``fmt``, ending with a newline; arguments as ``render_plan``."""
    return _in_format(
        fmt,
        text=lambda: drift_text(report, color=color, width=width, full=full),
        as_json=lambda: drift_to_json(report),
        markdown=lambda: _markdown_drift(report, width=width, full=full),
    )


def _in_format(
    fmt: Format,
    *,
    text: Callable[[], str],
    as_json: Callable[[], dict[str, Any]],
    markdown: Callable[[], str],
) -> str:
    """The output of the renderer ``fmt`` names; text and Markdown with bidi and invisible
    characters escaped (JSON escapes them itself)."""
    match fmt:
        case "text":
            return visible(text())
        case "json":
            return dumps(as_json())
        case "markdown":
            return visible(markdown())
        case _:
            return _unknown(fmt)


def _markdown_plan(plan: Plan, *, width: int, full: bool) -> str:
    from reconciler.render.markdown import plan_markdown

    return plan_markdown(plan, width=width, full=full)


def _markdown_drift(report: DriftReport, *, width: int, full: bool) -> str:
    from reconciler.render.markdown import drift_markdown

    return drift_markdown(report, width=width, full=full)


def __getattr__(name: str) -> Any:
    """``GITHUB_COMMENT_LIMIT``, from ``markdown`` once asked for (PEP 562)."""
    if name == "GITHUB_COMMENT_LIMIT":
        from reconciler.render.markdown import GITHUB_COMMENT_LIMIT

        return GITHUB_COMMENT_LIMIT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unknown(fmt: object) -> NoReturn:
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = [
    "DONE",
    "FORMATS",
    "FORMAT_VERSION",
    "GITHUB_COMMENT_LIMIT",
    "Format",
    "drift_to_json",
    "plan_to_json",
    "render_apply_summary",
    "render_drift",
    "render_plan",
    "should_color",
]
