"""Property: plans are exact and applies converge, over a sequence of edits (hypothesis).

Whatever valid manifests hypothesis generates (``test_properties``' strategies: agents with
tools, MCP servers, skills and metadata; environments with packages and networking; vaults
with credentials from env vars; deployments; memory stores with seeds; skills from a
generated directory), and whatever sequence of edits follows (a new set over the same names,
lists reordered, a document dropped, a document renamed with ``moved_from``, nothing at all),
after each step:

* the plan made before ``apply`` lists exactly the actions ``apply`` reports (same
  addresses, same types, same counts);
* the next plan is empty, and ``drift`` is clean;
* the lockfile's serial grows when something changed, and only then.

The default run keeps a few examples; ``slow`` runs many more.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from test_properties import (
    NO_SHRINK,
    SECRET_ENV,
    _dump,
    _upload_skill,
    _with_pins,
    _with_skill,
    _without_protect,
    _write,
    agent_spec,
    environment_spec,
    manifests,
    memory_store_spec,
    vault_spec,
)

from reconciler.app import PlanChoices, Settings, apply, drift, make_plan
from reconciler.state import read_lockfile

pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
PROJECT = "converge"
#: kinds a rename may move (a skill's slug is its name: it cannot move)
RENAMEABLE = ("Agent", "Environment", "Vault", "Deployment", "MemoryStore")

Docs = list[dict[str, Any]]

# --- edits ----------------------------------------------------------------------------------------


def _copy(docs: Docs) -> Docs:
    return json.loads(json.dumps(docs))  # type: ignore[no-any-return]


def _reordered(docs: Docs, draw: Any) -> Docs:
    """Every collection whose order means nothing in a new order: MCP servers, skills, an
    agent's tools and their configs, a deployment's resources, credentials, vaults, packages,
    hosts, metadata keys, and the documents themselves."""
    out = _copy(docs)

    def shuffle(items: list[Any]) -> list[Any]:
        return list(draw(st.permutations(items)))

    for d in out:
        spec = d["spec"]
        for key in ("mcp_servers", "credentials", "vaults", "skills", "tools", "resources"):
            if isinstance(spec.get(key), list):
                spec[key] = shuffle(spec[key])
        for tool in spec.get("tools", []) if d["kind"] == "Agent" else []:
            if isinstance(tool.get("configs"), list):
                tool["configs"] = shuffle(tool["configs"])
        if isinstance(spec.get("metadata"), dict):
            spec["metadata"] = dict(shuffle(list(spec["metadata"].items())))
        config = spec.get("config")
        if isinstance(config, dict):
            if isinstance(config.get("packages"), dict):
                config["packages"] = {
                    k: shuffle(v) for k, v in shuffle(list(config["packages"].items()))
                }
            net = config.get("networking")
            if isinstance(net, dict) and isinstance(net.get("allowed_hosts"), list):
                net["allowed_hosts"] = shuffle(net["allowed_hosts"])
    return shuffle(out)


def _renamed(docs: Docs, index: int, new: str) -> Docs:
    """Document ``index`` renamed to ``new`` with ``moved_from``; references follow."""
    out = _copy(docs)
    doc = out[index]
    kind, old = doc["kind"], doc["name"]
    doc["name"] = new
    doc["moved_from"] = old
    for d in out:
        if d["kind"] != "Deployment":
            continue
        spec = d["spec"]
        if kind == "Agent":
            if spec["agent"] == old:
                spec["agent"] = new
            elif isinstance(spec["agent"], dict) and spec["agent"]["ref"] == old:
                spec["agent"]["ref"] = new
        elif kind == "Environment" and spec.get("environment") == old:
            spec["environment"] = new
        elif kind == "Vault" and old in spec.get("vaults", []):
            spec["vaults"] = [new if v == old else v for v in spec["vaults"]]
        elif kind == "MemoryStore":
            for r in spec.get("resources", []):
                if r.get("memory_store") == old:
                    r["memory_store"] = new
    return out


def _dropped(docs: Docs, index: int) -> Docs | None:
    """Document ``index`` removed, or None when others refer to it."""
    doc = docs[index]
    rest = [d for i, d in enumerate(docs) if i != index]
    name = doc["name"]
    for d in rest:
        spec = d["spec"]
        refs: list[Any] = []
        if d["kind"] == "Deployment":
            agent = spec["agent"]
            refs = [agent if isinstance(agent, str) else agent["ref"], spec.get("environment")]
            refs += spec.get("vaults", [])
            refs += [r.get("memory_store") for r in spec.get("resources", [])]
        if d["kind"] == "Agent":
            refs = [s.get("ref") for s in spec.get("skills", [])]
        if name in refs:
            return None
    if not any(d["kind"] == "Agent" for d in rest):
        return None
    return _copy(rest)


#: a fresh spec for one document of these kinds (references to it stay valid)
SPECS = {
    "Agent": agent_spec,
    "Environment": environment_spec,
    "Vault": vault_spec,
    "MemoryStore": memory_store_spec,
}
#: optional fields a user may empty or drop: the provider's default must not show as a change
EMPTIABLE = {
    "Agent": {"description": "", "system": "", "metadata": {}, "tools": [], "mcp_servers": []},
    "Environment": {"description": "", "metadata": {}},
    "Vault": {"metadata": {}, "credentials": []},
    "MemoryStore": {"description": "", "metadata": {}},
    "Deployment": {"description": "", "metadata": {}},
}


def _respecced(docs: Docs, index: int, draw: Any) -> Docs:
    """Document ``index`` with a new spec of its kind (its skill references kept)."""
    out = _copy(docs)
    doc = out[index]
    spec = draw(SPECS[doc["kind"]]())
    if doc["kind"] == "Agent":
        refs = [s for s in doc["spec"].get("skills", []) if "ref" in s]
        if refs:
            spec["skills"] = [s for s in spec.get("skills", []) if "ref" not in s] + refs
    doc["spec"] = spec
    return out


def _emptied(docs: Docs, index: int, draw: Any) -> Docs | None:
    """One optional field of document ``index`` emptied or dropped."""
    out = _copy(docs)
    doc = out[index]
    fields = EMPTIABLE.get(doc["kind"], {})
    if not fields:
        return None
    key = draw(st.sampled_from(sorted(fields)))
    if key == "mcp_servers" and any(
        t.get("type") == "mcp_toolset" for t in doc["spec"].get("tools", [])
    ):
        return None  # a toolset needs its server
    if key == "tools" and doc["spec"].get("mcp_servers"):
        return None  # a server needs its toolset
    if draw(st.booleans()):
        doc["spec"][key] = fields[key]
    else:
        doc["spec"].pop(key, None)
    return out


@st.composite
def steps(draw: Any) -> list[tuple[str, Docs]]:
    """A first set of documents, then a few edits of it: (what the edit was, the documents)."""
    current = _without_protect(draw(manifests()))
    out = [("first", current)]
    for n in range(draw(st.integers(1, 3))):
        what = draw(
            st.sampled_from(["regenerate", "respec", "empty", "reorder", "rename", "drop", "same"])
        )
        if what in ("respec", "empty"):
            candidates = [i for i, d in enumerate(current) if d["kind"] in SPECS]
            if what == "empty":
                candidates = [i for i, d in enumerate(current) if d["kind"] in EMPTIABLE]
            if not candidates:
                continue
            index = draw(st.sampled_from(candidates))
            changed = (
                _respecced(current, index, draw)
                if what == "respec"
                else _emptied(current, index, draw)
            )
            if changed is None:
                continue
            current = changed
        elif what == "regenerate":
            current = _without_protect(draw(manifests()))
        elif what == "reorder":
            current = _reordered(current, draw)
        elif what == "rename":
            candidates = [i for i, d in enumerate(current) if d["kind"] in RENAMEABLE]
            if not candidates:
                continue
            index = draw(st.sampled_from(candidates))
            current = _renamed(current, index, f"moved-{n}")
        elif what == "drop":
            dropped = _dropped(current, draw(st.integers(0, len(current) - 1)))
            if dropped is None:
                continue
            current = dropped
        else:
            current = _copy(current)
        # a moved_from is a one-apply note: the next edit starts without it
        out.append((what, current))
        current = [{k: v for k, v in d.items() if k != "moved_from"} for d in current]
    return out


# --- the check -------------------------------------------------------------------------------------


@contextmanager
def _secrets() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(SECRET_ENV)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _actions(actions: Any) -> list[tuple[str, str]]:
    return sorted((a.address, a.type) for a in actions if a.type != "noop")


def _serial(s: Settings) -> int:
    if not s.lockfile.exists():
        return 0
    return read_lockfile(s.lockfile, project=PROJECT).serial


def _converges(sequence: list[tuple[str, Docs]]) -> None:
    for what, docs in sequence:
        note(f"{what}:\n{_dump(docs)}")
    with _secrets(), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = Settings(
            manifests=root / "manifests",
            lockfile=root / "state/reconciler.lock",
            project=PROJECT,
            db_path=root / "provider.db",
        )
        uploaded = _upload_skill(s.db_path)
        choices = PlanChoices(prune=True)
        previous: Docs | None = None
        for what, docs in sequence:
            docs = _with_pins(_with_skill(docs, *uploaded), s.lockfile)
            same_manifests, previous = docs == previous, docs
            _write(root / "manifests", docs)
            before = asyncio.run(make_plan(s, choices)).plan
            serial = _serial(s)
            result = asyncio.run(apply(s, choices))
            assert result is not None
            report = result.report
            assert not report.failures, (what, report.failures)
            applied = _actions(o.action for o in report.outcomes)
            # the plan shown before apply is what apply did: nothing more, nothing less
            assert _actions(before.actions) == applied, (what, _actions(before.actions), applied)
            assert _actions(result.plan.actions) == applied, what
            if what in ("reorder", "same"):  # nothing to send
                assert not applied, (what, applied)
            # the lockfile is written when something changed, and only then (a manifest
            # edit that sends nothing, such as pinning the version followed, is recorded)
            if applied:
                assert _serial(s) > serial, (what, applied)
            elif same_manifests:
                assert _serial(s) == serial, (what, "no change, but the lockfile was rewritten")
            again = asyncio.run(make_plan(s, choices)).plan
            left = [
                (
                    a.address,
                    a.type,
                    a.reason,
                    [(c.path, c.old, c.new) for c in getattr(a, "changes", ())],
                )
                for a in again.actions
                if a.type != "noop"
            ]
            assert not again.has_changes, (what, left)
            report_drift = asyncio.run(drift(s, ignore_unmanaged=True))
            assert not report_drift.has_drift, (
                what,
                [(i.address, i.type, i.message) for i in report_drift.items],
            )


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "phases": NO_SHRINK,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

_AGENT = {"kind": "Agent", "name": "coder", "spec": {"model": "claude-haiku-4-5"}}


@settings(max_examples=4, **_SETTINGS)
@example(sequence=[("first", [_AGENT]), ("same", [_AGENT])])
@given(steps())
def test_plans_are_exact_and_applies_converge(sequence: list[tuple[str, Docs]]) -> None:
    _converges(sequence)


@pytest.mark.slow
@settings(max_examples=60, **_SETTINGS)
@given(steps())
def test_plans_are_exact_and_applies_converge_many(sequence: list[tuple[str, Docs]]) -> None:
    _converges(sequence)
