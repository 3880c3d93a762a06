"""``kind: Policy`` documents: rules as CEL expressions over each desired resource.

A policy is no remote resource: it is never planned, applied or recorded. Its rules are
checked against every document of the kinds they list, by ``validate``, ``plan`` and
``apply``; a ``mandatory`` rule that fails stops them (``PolicyError``, exit 1, nothing
changed), an ``advisory`` one is a warning the plan shows. The expressions are CEL, the
language of Kubernetes ValidatingAdmissionPolicy, compiled and run by ``cel-python``
(``celpy``), the maintained pure-Python implementation; nothing here interprets CEL itself.

Each expression sees the document as it is written (values the manifest leaves out are
absent, not defaulted): ``spec`` (a map), ``name`` (its name), ``kind`` (``Agent``...) and
``metadata`` (``spec.metadata``, an empty map without one). Reading a field the document
does not set is an error on that resource, so optional fields are guarded with ``has()``:
``!has(spec.metadata) || has(spec.metadata.owner)``.

``check_expressions`` (at load) refuses an expression that does not compile, reads a
variable it is not given (a typo such as ``specs``) or names a ``spec`` field no listed kind
has; ``evaluate_policies`` runs the rules. ``celpy`` (and the
parser it loads) is imported on first use only, so manifests without policies never pay
for it (``tests/test_startup.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from reconciler.errors import ManifestIssue
from reconciler.kinds import MANIFEST_KINDS
from reconciler.lean import LeanModel

from .document import SPEC_MODELS, Document
from .fields import NonEmptyStr, ResourceName, SpecModel, fail
from .yamlsource import SourceLocation

Level = Literal["mandatory", "advisory"]
#: the variables an expression sees, besides CEL's own functions
VARIABLES = ("spec", "name", "kind", "metadata")
#: names CEL itself gives an expression: its type names (``type(x) == string``) and the
#: protobuf package of its wrapper types
_CEL_NAMES = frozenset(
    {"bool", "bytes", "double", "duration", "dyn", "google", "int", "list", "map"}
    | {"null_type", "string", "timestamp", "type", "uint"}
)
#: the macros that bind a variable of their own (``spec.tools.all(t, t.type != '')``)
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class PolicyRule(SpecModel):
    """One rule: a CEL expression that must be true for each resource of ``kinds``."""

    name: ResourceName | None = Field(
        default=None, description="Optional; names the rule in messages (else its number)."
    )
    kinds: list[str] = Field(
        min_length=1,
        description="Manifest kinds the rule checks, e.g. [Agent, Deployment].",
        json_schema_extra={"items": {"enum": list(MANIFEST_KINDS)}},
    )
    expression: NonEmptyStr = Field(
        description="CEL over spec, name, kind and metadata; true means the resource complies. "
        "Guard optional fields with has(), e.g. !has(spec.tools) || size(spec.tools) < 5."
    )
    message: NonEmptyStr = Field(description="What is wrong when the expression is false.")
    level: Level = Field(
        default="mandatory",
        description="mandatory: validate, plan and apply fail (exit 1); advisory: a warning.",
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        for index, kind in enumerate(kinds):
            if kind not in MANIFEST_KINDS:
                close = get_close_matches(kind, list(MANIFEST_KINDS), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                fail(f"unknown kind '{kind}' (kinds: {', '.join(MANIFEST_KINDS)}){hint}", index)
        return kinds


class PolicySpec(SpecModel):
    """The rules of one policy."""

    description: str | None = None
    rules: list[PolicyRule] = Field(min_length=1)

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, rules: list[PolicyRule]) -> list[PolicyRule]:
        # a finding names its rule: two alike could not be told apart (text and JSON)
        first: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule.name is None:
                continue
            if rule.name in first:
                fail(
                    f"rule name '{rule.name}' is used twice in this policy (also "
                    f"rules[{first[rule.name]}]); names must be unique",
                    index,
                    "name",
                )
            first.setdefault(rule.name, index)
        return rules


class PolicyDocument(LeanModel):
    """A ``kind: Policy`` document (never a remote resource). Address: ``policy.NAME``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)

    kind: Literal["Policy"]
    name: ResourceName
    spec: PolicySpec

    @property
    def address(self) -> str:
        return f"policy.{self.name}"


@dataclass(frozen=True)
class PolicySource:
    """A loaded policy and where each of its rules is written."""

    document: PolicyDocument
    #: where the document starts
    location: SourceLocation
    #: rule index -> where its expression is written
    expressions: tuple[SourceLocation, ...]

    def rule_name(self, index: int) -> str:
        rule = self.document.spec.rules[index]
        return f"rule '{rule.name}'" if rule.name else f"rule {index + 1}"


@dataclass(frozen=True)
class Finding:
    """A resource that breaks (or could not be checked by) one rule."""

    address: str
    #: where the resource's document is written
    location: SourceLocation
    policy: str
    rule: str
    level: Level
    message: str

    def issue(self) -> ManifestIssue:
        """The finding as a ``file:line:col`` manifest issue."""
        loc = self.location
        return ManifestIssue(loc.file, loc.line, loc.col, self.sentence())

    def sentence(self) -> str:
        return f"{self.address}: {self.message} (policy {self.policy}, {self.rule}, {self.level})"


# --- compile-time checks ------------------------------------------------------------------


def check_expressions(policies: Iterable[PolicySource]) -> list[ManifestIssue]:
    """Every expression that does not compile, reads an unknown variable, or reads a
    ``spec`` field that none of the rule's kinds has, as an issue at the expression's place."""
    issues: list[ManifestIssue] = []
    for policy in policies:
        for index, rule in enumerate(policy.document.spec.rules):
            loc = policy.expressions[index]
            problem = expression_problem(rule)
            if problem is not None:
                path = f"spec.rules[{index}].expression"
                issues.append(ManifestIssue(loc.file, loc.line, loc.col, problem, path))
    return issues


def expression_problem(rule: PolicyRule) -> str | None:
    from celpy.celparser import CELParseError  # lazy: only manifests with policies load CEL

    try:
        tree = _environment().compile(rule.expression)
    except CELParseError as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        if isinstance(line, int) and isinstance(column, int):
            text = rule.expression.splitlines()[line - 1] if rule.expression else ""
            near = text[column - 1 : column + 19].strip() or "the end"
            return (
                f"the expression does not compile as CEL: unexpected input at line {line}, "
                f"column {column} of the expression, near '{near}'"
            )
        return "the expression does not compile as CEL; check its syntax"
    unknown = _unknown_variable(tree)
    if unknown is not None:
        close = get_close_matches(unknown, VARIABLES, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; fix the expression"
        return (
            f"'{unknown}' is not a variable (the variables are spec, name, kind and metadata){hint}"
        )
    function = _unknown_function(tree)
    if function is not None:
        functions = _functions()
        close = get_close_matches(function, sorted(functions), n=1)
        hint = (
            f"; did you mean {close[0]}?"
            if close
            else f"; the functions are: {', '.join(sorted(functions, key=str.lower))}"
        )
        return f"'{function}' is not a CEL function here{hint}"
    paths, guarded = _spec_paths(tree)
    for path in paths:
        if any(path[: len(g)] == g for g in guarded):
            continue  # tested with has() first: a field a newer schema may add (spec.rollout)
        if not any(_schema_has(_spec_schema(kind), path) for kind in rule.kinds):
            shown = "spec." + ".".join("[]" if p == "[]" else p for p in path).replace(".[]", "[]")
            kinds = ", ".join(rule.kinds)
            hint = _field_hint(rule.kinds, path)
            return f"{shown} is not a field of the {kinds} spec{hint}; fix the expression"
    return None


@functools.cache
def _environment() -> Any:
    import celpy

    return celpy.Environment()


def _unknown_variable(tree: Any) -> str | None:
    """The first name the expression reads that is no variable it is given, no variable a
    macro binds and no name of CEL's own: a typo (``specs.model``), which CEL would only
    report on each resource (and ``has(metdata.owner)`` would silently make false)."""
    from lark import Tree

    bound: set[str] = set()
    names: list[str] = []
    for node in tree.iter_subtrees_topdown():
        if node.data in ("ident", "dot_ident") and node.children:
            names.append(str(node.children[0]))
        elif node.data == "member_dot_arg" and len(node.children) == 3:
            method, args = node.children[1], node.children[2]
            if str(method) in _MACROS and isinstance(args, Tree) and args.children:
                variable = [n for n in args.children[0].iter_subtrees() if n.data == "ident"]
                if len(variable) == 1:
                    bound.add(str(variable[0].children[0]))
    known = {*VARIABLES, *_CEL_NAMES, *bound}
    return next((n for n in names if n not in known), None)


@functools.cache
def _functions() -> frozenset[str]:
    """The functions and macros an expression may call: the CEL library's own (Kubernetes'
    extension libraries, ``lowerAscii`` and the like, are not among them)."""
    from celpy.evaluation import base_functions

    # not the operators' internal names (``_in_``, ``_+_``...): no expression calls them
    named = (n for n in base_functions if n.isidentifier() and not n.startswith("_"))
    return frozenset(named) | _MACROS | {"has"}


def _unknown_function(tree: Any) -> str | None:
    """The first function the expression calls that the CEL library does not have: a typo
    (``startswith``), which CEL would only report on each resource, as an undeclared
    reference with the library's whole activation."""
    known = _functions()
    for node in tree.iter_subtrees_topdown():
        if node.data == "ident_arg" and node.children:
            name = str(node.children[0])
        elif node.data == "member_dot_arg" and len(node.children) >= 2:
            name = str(node.children[1])
        else:
            continue
        if name not in known:
            return name
    return None


def _spec_paths(tree: Any) -> tuple[list[tuple[str, ...]], set[tuple[str, ...]]]:
    """The field paths rooted at ``spec`` that the expression reads (``[]`` for an index),
    and those it tests with ``has()``."""
    from lark import Token, Tree

    #: a macro's variable -> the items it stands for (``t`` in ``spec.tools.all(t, ...)``);
    #: None for a name bound to two lists, which stands for neither
    bound: dict[str, tuple[str, ...] | None] = {}

    def path_of(node: Any) -> tuple[str, ...] | None:
        if not isinstance(node, Tree):
            return None
        if node.data == "member" and len(node.children) == 1:
            return path_of(node.children[0])
        if node.data == "primary" and len(node.children) == 1:
            child = node.children[0]
            if isinstance(child, Tree) and child.data == "ident":
                token = child.children[0]
                name = str(token) if isinstance(token, Token) else ""
                return ("spec",) if name == "spec" else bound.get(name)
            return None
        if node.data == "member_dot":
            inner = path_of(node.children[0])
            return None if inner is None else (*inner, str(node.children[1]))
        if node.data == "member_index":
            inner = path_of(node.children[0])
            return None if inner is None else (*inner, _index_key(node.children[1]))
        return None

    def _index_key(index: Any) -> str:
        """``model`` for ``['model']`` (a field named in brackets), else ``[]``."""
        node = index
        while isinstance(node, Tree) and node.data != "literal" and len(node.children) == 1:
            node = node.children[0]
        if isinstance(node, Tree) and node.data == "literal":
            text = str(node.children[0])
            quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
            if quoted and text[:3] not in ("'" * 3, '"' * 3):
                return text[1:-1]
        return "[]"

    def paths_in(root: Any) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for node in root.iter_subtrees():
            path = path_of(node) if node.data in ("member_dot", "member_index") else None
            if path is not None and len(path) > 1:
                found.add(path[1:])
        return found

    for node in tree.iter_subtrees_topdown():  # outer macros first: their items come first
        if node.data == "member_dot_arg" and str(node.children[1]) in _MACROS:
            items, args = path_of(node.children[0]), node.children[2]
            name = _ident(args.children[0]) if isinstance(args, Tree) and args.children else None
            if items is not None and name is not None and name != "spec":
                path = (*items, "[]")
                bound[name] = path if bound.get(name, path) == path else None
    found = paths_in(tree)
    guarded: set[tuple[str, ...]] = set()
    for node in tree.iter_subtrees():
        if node.data == "ident_arg" and node.children and str(node.children[0]) == "has":
            guarded |= {max(paths_in(node), key=len)} if paths_in(node) else set()
    # the longest paths say it all: spec.a.b covers spec.a
    longest = [
        path
        for path in sorted(found)
        if not any(other[: len(path)] == path and other != path for other in found)
    ]
    return longest, guarded


#: CEL's macros that bind a variable to each item of a list (or key of a map)
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


def _ident(node: Any) -> str | None:
    """The name an expression is when it is a bare identifier (a macro's variable)."""
    from lark import Tree

    while isinstance(node, Tree) and len(node.children) == 1 and node.data != "ident":
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "ident":
        return str(node.children[0])
    return None


@functools.cache
def _spec_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = SPEC_MODELS[kind].model_json_schema()
    return schema


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(name, {})
    return node


def _schema_has(root: dict[str, Any], path: tuple[str, ...], node: Any = None) -> bool:
    """Whether some value valid for ``root`` can hold ``path``."""
    node = _resolve(root if node is None else node, root)
    if not path:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return any(_schema_has(root, path, sub) for sub in node[key])
    head, rest = path[0], path[1:]
    if head == "[]":
        if "items" in node:
            return _schema_has(root, rest, node["items"])
        extra = node.get("additionalProperties")
        return _schema_has(root, rest, extra) if isinstance(extra, dict) else "type" not in node
    properties = node.get("properties") or {}
    if head in properties:
        return _schema_has(root, rest, properties[head])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return _schema_has(root, rest, extra)
    # a free-form object (e.g. a custom tool's input_schema) may hold anything
    return node.get("type") == "object" and not properties and extra is not False


def _field_hint(kinds: list[str], path: tuple[str, ...]) -> str:
    """`` (did you mean spec.model?)`` for the first segment no kind has, when a field
    there is close (below the top, the field alone: ``(did you mean type?)``)."""
    schemas = [_spec_schema(kind) for kind in kinds]
    depth = next(
        i for i in range(len(path) - 1, -1, -1) if any(_schema_has(r, path[:i]) for r in schemas)
    )
    fields = {f for root in schemas for f in _fields_at(root, path[:depth])}
    close = get_close_matches(path[depth], sorted(fields), n=1)
    if not close:
        return ""
    return f" (did you mean spec.{close[0]}?)" if depth == 0 else f" (did you mean {close[0]}?)"


def _fields_at(root: dict[str, Any], path: tuple[str, ...], node: Any = None) -> set[str]:
    """The field names a value at ``path`` may have (every variant of a union)."""
    node = _resolve(root if node is None else node, root)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return {f for sub in node[key] for f in _fields_at(root, path, sub)}
    if not path:
        return set(node.get("properties") or {})
    head, rest = path[0], path[1:]
    if head == "[]":
        items = node.get("items") or node.get("additionalProperties")
        return _fields_at(root, rest, items) if isinstance(items, dict) else set()
    child = (node.get("properties") or {}).get(head)
    return _fields_at(root, rest, child) if isinstance(child, dict) else set()


# --- evaluation ---------------------------------------------------------------------------


def evaluate_policies(
    policies: Iterable[PolicySource],
    documents: Iterable[tuple[Document, SourceLocation]],
) -> list[Finding]:
    """Run every rule over every document of its kinds.

    Args:
        policies: the loaded policies (``ManifestSet.policies`` and central ones).
        documents: each document with where it is written.

    Returns:
        A finding per (rule, resource) whose expression is false, or raised on that
        resource (e.g. it read a field the document does not set), or is not a boolean;
        sorted by place, then policy.
    """
    policies = list(policies)
    if not policies:
        return []
    from celpy.adapter import json_to_cel  # lazy, as in expression_problem

    from .celequality import EQUALITY

    env = _environment()
    # ==, != and `in` as Kubernetes CEL runs them (across types false/true, never an error),
    # and <, >... across int, uint and double
    programs = [
        (policy, index, rule, env.program(env.compile(rule.expression), functions=EQUALITY))
        for policy in policies
        for index, rule in enumerate(policy.document.spec.rules)
    ]
    findings: list[Finding] = []
    for doc, location in documents:
        spec = doc.spec.model_dump(
            mode="json", exclude_unset=True, context={"as_written": True}
        )
        spec = _within_cel_int(spec)
        activation = json_to_cel(
            {
                "spec": spec,
                "name": doc.name,
                "kind": doc.kind,
                "metadata": spec.get("metadata") or {},
            }
        )
        for policy, index, rule, program in programs:
            if doc.kind not in rule.kinds:
                continue
            message, broken = _run(program, activation, rule)
            if broken and message is not None:  # the fix is in the rule: say where it is
                where = policy.expressions[index]
                message += (
                    f" at {where}"
                    if message.endswith("fix the expression")
                    else f"; the rule's expression is at {where}"
                )
            if message is not None:
                findings.append(
                    Finding(
                        doc.address,
                        location,
                        policy.document.name,
                        policy.rule_name(index),
                        rule.level,
                        message,
                    )
                )
    return sorted(findings, key=lambda f: (f.location.file, f.location.line, f.policy, f.rule))


_CEL_INT = range(-(2**63), 2**63)


def _within_cel_int(value: Any) -> Any:
    """``value`` with every integer beyond CEL's 64-bit ``int`` as a double (as a JSON number
    it is; ``inf`` past a double's range): celpy raises ``ValueError("overflow")`` on it,
    and free-form fields (a custom tool's ``input_schema``) may hold one."""
    if isinstance(value, dict):
        return {key: _within_cel_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_within_cel_int(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value not in _CEL_INT:
        try:
            return float(value)
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")
    return value


def _run(program: Any, activation: Any, rule: PolicyRule) -> tuple[str | None, bool]:
    """(None when the resource complies, else what to tell the user; whether the rule could
    not be evaluated on it: a fix in the rule's expression)."""
    from celpy import celtypes

    try:
        result = program.evaluate(activation)
    except Exception as exc:  # noqa: BLE001 - CEL's errors and the library's own alike
        # the rule's own message first: what the policy asks is what the user must read
        return (
            f"{rule.message}: the rule could not be checked on this resource: {_eval_error(exc)}",
            True,
        )
    if not isinstance(result, celtypes.BoolType):
        value = _cel_type(type(result).__name__)
        if isinstance(result, str):
            value += f" ({_short(repr(str(result)))})"
        elif isinstance(result, int | float):
            value += f" ({int(result) if isinstance(result, int) else float(result)})"
        return f"the rule's expression gave {value}, not true or false; fix the expression", True
    return (None if bool(result) else rule.message), False


#: CEL's value types (celpy's class names) in words
_CEL_TYPES = {
    "StringType": "a string",
    "IntType": "an integer",
    "UintType": "an unsigned integer",
    "DoubleType": "a number",
    "BoolType": "a boolean",
    "BytesType": "bytes",
    "ListType": "a list",
    "MapType": "a map",
    "NoneType": "null",
}


def _cel_type(name: str) -> str:
    return _CEL_TYPES.get(name, name.removesuffix("Type").lower() or name)


#: one error celpy carried on as a value, as its operators print it: its message and cause
_CARRIED = re.compile(r"""CELEvalError\(\*\((["'])(.*?)\1, <class '(\w+)'>""")


def _eval_error(exc: Exception) -> str:
    """What went wrong, in CEL's words (celpy's messages carry its token and class reprs)."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    text = str(args[0]) if args else str(exc)
    cause = args[1] if len(args) > 1 else None
    detail = args[2] if len(args) > 2 and isinstance(args[2], tuple) and args[2] else None
    carried = _CARRIED.search(str(detail[0])) if detail is not None else None
    if carried is not None:
        # errors CEL carried on as values met in `&&` / `||` (an all() or exists() over a
        # list): "no such overload" of the two; the first one's own words say what happened
        text, detail = carried.group(2), None
        cause = KeyError if carried.group(3) == "KeyError" else None
    # an error CEL carried on as a value (a missing field read further) fails the next step
    if cause is KeyError or text.startswith("no such member") or ".CELEvalError'>" in text:
        if ".CELEvalError'>" in text:
            text = "a field it reads is not set"
        elif text == "no such key" and detail is not None:
            text = f"no such key: {str(detail[0])!r}"
        return (
            f"{text}. If the field is optional, guard it with has(), e.g. "
            "!has(spec.x) || spec.x == ..."
        )
    if cause is TypeError and detail is not None and "but takes strings" in str(detail[0]):
        return f"{detail[0]}; fix the expression"  # celequality's string functions
    if cause is TypeError and "no matching overload" in text:
        kinds = [_cel_type(f"{n}Type") for n in re.findall(r"celtypes\.(\w+)Type", text)]
        given = " and ".join(kinds) if kinds else "these values"
        return f"no operator or function takes {given} here; fix the expression"
    if cause is IndexError:
        return "a list index is out of range; guard it with size(), e.g. size(spec.x) > 0 && ..."
    if text.endswith("does not support field selection"):
        # `spec.model.id` where the model is written as a string
        found = re.match(r"(.*) with type: '<class 'celpy\.celtypes\.(\w+)'>'", text)
        if found is None:
            return "it selects a field of a value that has none; fix the expression"
        value, kind = _short(_plain(found.group(1))), _cel_type(found.group(2))
        return f"{value} ({kind}) has no fields to select; fix the expression"
    if text == "return error for overflow" and detail is not None:
        # celpy's words for any failed conversion: int('high'), timestamp('soon')
        if str(detail[0]) == "overflow":
            return "an integer overflows (64 bits); fix the expression"
        return f"a conversion failed: {_short(_plain(str(detail[0])))}; fix the expression"
    if detail is not None and not re.search(r"[A-Za-z]+Type\(", str(detail[0])):
        text = f"{text} ({detail[0]})"
    return f"{text or type(exc).__name__}; fix the expression"


def _plain(text: str) -> str:
    """``text`` with celpy's value reprs unwrapped: ``StringType('x')`` is ``'x'``."""
    while True:
        unwrapped = re.sub(r"\b[A-Z][a-z]*Type\(([^()]*)\)", r"\1", text)
        if unwrapped == text:
            return text
        text = unwrapped


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "VARIABLES",
    "Finding",
    "PolicyDocument",
    "PolicyRule",
    "PolicySource",
    "PolicySpec",
    "check_expressions",
    "evaluate_policies",
]
