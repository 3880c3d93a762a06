"""Checks read from a manifest document that did not validate, as written.

A document that fails validation is not loaded, but its other mistakes are still reported
beside its validation errors in one run, as a valid document's would be: the references it
makes to other manifests, the checks that read two of its fields, its skill's source
directory, its ``from_file`` secrets and its policy expressions. Each check skips the places
whose own error is reported already (``wrong``), so no error follows from another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ManifestIssue
from reconciler.kinds import NAME_PATTERN

from .agent import mcp_server_problems, tool_repeats
from .document import moved_from_itself
from .environment import PACKAGE_MANAGERS, PACKAGE_MANAGERS_UNREACHABLE
from .fields import repeats
from .manifestset import DocumentSource
from .messages import format_path
from .policy import PolicyRule, expression_problem
from .skill import SkillSpec, skill_source
from .skilldir import SkillSourceError
from .vault import credential_clashes
from .yamlsource import DataPath, SourceLocation

#: ``(kind, name, spec path, source)`` of one reference from a document to another
Reference = tuple[str, str, DataPath, DocumentSource]


def issue_at(loc: SourceLocation, message: str, path: DataPath = ()) -> ManifestIssue:
    """The issue ``message`` at ``loc``, about the value at ``path``."""
    return ManifestIssue(loc.file, loc.line, loc.col, message, format_path(path))


def raw_references(
    data: dict[str, Any], source: DocumentSource, wrong: list[DataPath]
) -> list[Reference]:
    """The references to other manifests of a Deployment or Agent document that was not
    loaded, as written (as ``references()`` reads those of a valid spec), but for those at
    or under a place in ``wrong`` (their error is reported already)."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return []
    found: list[tuple[str, Any, DataPath]] = []
    if data.get("kind") == "Deployment":
        agent = spec.get("agent")
        if isinstance(agent, dict):
            found.append(("Agent", agent.get("ref"), ("agent", "ref")))
        else:
            found.append(("Agent", agent, ("agent",)))
        found.append(("Environment", spec.get("environment"), ("environment",)))
        vaults = spec.get("vaults")
        for index, vault in enumerate(vaults if isinstance(vaults, list) else ()):
            found.append(("Vault", vault, ("vaults", index)))
        resources = spec.get("resources")
        for index, item in enumerate(resources if isinstance(resources, list) else ()):
            if isinstance(item, dict) and "type" not in item:  # a mount by name
                found.append(
                    ("MemoryStore", item.get("memory_store"), ("resources", index, "memory_store"))
                )
    elif data.get("kind") == "Agent":
        skills = spec.get("skills")
        for index, skill in enumerate(skills if isinstance(skills, list) else ()):
            if isinstance(skill, dict):
                found.append(("Skill", skill.get("ref"), ("skills", index, "ref")))
    references: dict[tuple[str, str], Reference] = {}
    for kind, name, spec_path in found:
        if (
            isinstance(name, str)
            and re.fullmatch(NAME_PATTERN, name)
            and not any(("spec", *spec_path)[: len(w)] == w for w in wrong)
        ):
            # once: a name written twice (`vaults: [v, v]`) is one mistake, its repeat another
            references.setdefault((kind, name), (kind, name, spec_path, source))
    return list(references.values())


def raw_cross_field_issues(
    data: dict[str, Any], source: DocumentSource, wrong: list[DataPath]
) -> list[ManifestIssue]:
    """The checks that read two fields of a document (an agent's MCP servers and toolsets,
    an environment's packages and networking, a memory store's seed paths, a vault's
    credential names and keys, ``moved_from``
    and ``name``) in a document
    that did not validate, as a valid one's are said, unless a field they read is wrong
    (its error is reported already, and fixing it may change what they find)."""

    def clear(*path: str | int) -> bool:
        return not any(path[: len(w)] == w or w[: len(path)] == path for w in wrong)

    found: list[tuple[str, DataPath, str]] = []
    name, moved_from = data.get("name"), data.get("moved_from")
    if isinstance(name, str) and moved_from == name and clear("name") and clear("moved_from"):
        found.append((moved_from_itself(name), ("moved_from",), "value"))
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return [issue_at(source.locate(p, point), m, p) for m, p, point in found]
    if data.get("kind") == "Agent" and clear("spec", "mcp_servers"):
        servers = spec.get("mcp_servers") or []
        tools = spec.get("tools") or []
        if isinstance(servers, list) and isinstance(tools, list):
            toolsets = [
                (index, tool["mcp_server_name"])
                for index, tool in enumerate(tools)
                if clear("spec", "tools", index)
                and isinstance(tool, dict)
                and tool.get("type") == "mcp_toolset"
                and isinstance(tool.get("mcp_server_name"), str)
            ]
            names = [s["name"] for s in servers if isinstance(s, dict) and "name" in s]
            every_tool = clear("spec", "tools")
            found += [
                (message, ("spec", *path), "value")
                for message, path in mcp_server_problems(names, toolsets, every_tool=every_tool)
            ]
    tools = spec.get("tools")
    if data.get("kind") == "Agent" and isinstance(tools, list):
        # the list's own check (each tool once) runs only when every tool validated
        raw = [
            t if isinstance(t, dict) and clear("spec", "tools", i) else {}
            for i, t in enumerate(tools)
        ]
        names = [t.get("name") if t.get("type") == "custom" else None for t in raw]
        toolset = "agent_toolset_20260401"
        found += [
            (message, ("spec", "tools", *path), "value")
            for message, path in tool_repeats(
                [n if isinstance(n, str) else None for n in names],
                [toolset if t.get("type") == toolset else None for t in raw],
            )
        ]
    seeds = spec.get("memories")
    if data.get("kind") == "MemoryStore" and isinstance(seeds, list):
        # the list's own check (each path once) runs only when every seed validated
        paths = [
            seed["path"]
            if isinstance(seed, dict)
            and isinstance(seed.get("path"), str)
            and clear("spec", "memories", index, "path")
            else None
            for index, seed in enumerate(seeds)
        ]
        found += [
            (
                f"memory path '{paths[index]}' is seeded twice",
                ("spec", "memories", index, "path"),
                "value",
            )
            for index in repeats(paths)
        ]
    credentials = spec.get("credentials")
    if data.get("kind") == "Vault" and isinstance(credentials, list):
        # the list's own check (names and keys once) runs only when every credential validated
        found += [
            (message, ("spec", "credentials", *path), "value")
            for message, path in credential_clashes(
                [_credential_keys(c, i, clear) for i, c in enumerate(credentials)]
            )
        ]
    config = spec.get("config")
    if (
        data.get("kind") == "Environment"
        and isinstance(config, dict)
        and config.get("type") == "cloud"
        and clear("spec", "config", "networking")
        and clear("spec", "config", "packages")
    ):
        networking, packages = config.get("networking"), config.get("packages")
        if (
            isinstance(networking, dict)
            and networking.get("type") == "limited"
            and networking.get("allow_package_managers") is not True
            and isinstance(packages, dict)
            and any(packages.get(manager) for manager in PACKAGE_MANAGERS)
        ):
            path: DataPath = ("spec", "config", "networking", "allow_package_managers")
            found.append((PACKAGE_MANAGERS_UNREACHABLE, path, "key"))
    return [issue_at(source.locate(p, point), m, p) for m, p, point in found]


def _credential_keys(
    credential: Any, index: int, clear: Callable[..., bool]
) -> tuple[str | None, str | None, str | None]:
    """``(name, key field, key)`` of one credential as written, None where not clear."""
    if not isinstance(credential, dict):
        return None, None, None
    at = ("spec", "credentials", index)
    name = credential.get("name")
    name = name if isinstance(name, str) and clear(*at, "name") else None
    auth = credential.get("auth")
    kind = auth.get("type") if isinstance(auth, dict) else None
    what = {
        "environment_variable": "secret_name",
        "static_bearer": "mcp_server_url",
        "mcp_oauth": "mcp_server_url",
    }.get(kind if isinstance(kind, str) else "")
    if not isinstance(auth, dict) or what is None or not clear(*at, "auth", "type"):
        return name, None, None
    key = auth.get(what)
    return name, what, key if isinstance(key, str) and clear(*at, "auth", what) else None


def raw_skill_source_issues(
    data: dict[str, Any], source: DocumentSource, file: Path, wrong: list[DataPath]
) -> list[ManifestIssue]:
    """The error of the directory a Skill document that did not validate names as its
    ``source`` (missing, outside the repository, ...), as a valid one's is said, unless
    ``source`` itself is wrong (its error is reported already)."""
    spec = data.get("spec")
    path: DataPath = ("spec", "source")
    if data.get("kind") != "Skill" or not isinstance(spec, dict):
        return []
    written = spec.get("source")
    if not isinstance(written, str) or any(path[: len(w)] == w for w in wrong):
        return []
    try:
        skill_source(SkillSpec.model_construct(source=written), file)
    except SkillSourceError as error:
        return [issue_at(source.locate(path, "value"), str(error), path)]
    return []


def raw_secret_files(
    data: dict[str, Any], source: DocumentSource
) -> list[tuple[SourceLocation, str, str]]:
    """The ``{from_file: PATH}`` secrets of a Vault document that did not validate, as
    written (its credentials' ``auth``), with where each is written."""
    spec = data.get("spec")
    credentials = (
        spec.get("credentials") if data.get("kind") == "Vault" and isinstance(spec, dict) else None
    )
    found: list[tuple[SourceLocation, str, str]] = []

    def walk(value: Any, path: DataPath) -> None:
        if isinstance(value, dict):
            if set(value) == {"from_file"} and isinstance(value["from_file"], str):
                found.append((source.locate(path), format_path(path), value["from_file"]))
                return
            for key, item in value.items():
                if isinstance(key, str):
                    walk(item, (*path, key))

    for index, credential in enumerate(credentials if isinstance(credentials, list) else ()):
        if isinstance(credential, dict):
            walk(credential.get("auth"), ("spec", "credentials", index, "auth"))
    return found


def raw_expression_issues(data: dict[str, Any], source: DocumentSource) -> list[ManifestIssue]:
    """The expressions that do not compile (or read no field) of the rules that are valid
    on their own in a policy that did not validate, as those of a valid policy are said."""
    spec = data.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    issues: list[ManifestIssue] = []
    for index, raw in enumerate(rules if isinstance(rules, list) else ()):
        try:
            rule = PolicyRule.model_validate(raw)
        except ValidationError:
            continue  # its own errors are said
        problem = expression_problem(rule)
        if problem is not None:
            path: DataPath = ("spec", "rules", index, "expression")
            issues.append(issue_at(source.locate(path, "value"), problem, path))
    return issues
