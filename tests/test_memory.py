"""What keeps a big plan's memory down (bench/RESULTS.md, session 3): each measure is checked
for what it must not change, and for doing what it claims."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest

from reconciler.engine.model import FieldChange
from reconciler.manifest.agent import AgentSpec
from reconciler.provider import embedded_client
from reconciler.provider.adapter import ClientBackedProvider

pytestmark = pytest.mark.anyio


def test_frozen_models_share_their_fields_set_without_changing_what_was_set() -> None:
    one = AgentSpec.model_validate({"model": "claude-sonnet-4-6"})
    two = AgentSpec.model_validate({"model": "claude-opus-4-6"})
    other = AgentSpec.model_validate({"model": "claude-opus-4-6", "system": "hi"})
    assert one.model_fields_set is two.model_fields_set == {"model"}
    assert other.model_fields_set == {"model", "system"}
    # what "exclude_unset" (the desired request body) sees is each instance's own
    assert set(one.model_dump(exclude_unset=True)) == {"model"}
    assert set(other.model_dump(exclude_unset=True)) == {"model", "system"}
    change = FieldChange(path="system", op="change", old="a", new="b")
    copy = change.model_copy(update={"new": "c"})
    assert copy.model_fields_set is not change.model_fields_set  # a copy gets its own set
    assert FieldChange(path="system", op="change", old="a", new="b").model_fields_set == (
        change.model_fields_set
    )


async def test_listed_objects_share_equal_short_strings(tmp_path: Path) -> None:
    async with embedded_client(tmp_path / "p.db") as client:
        for i in range(3):
            await client.agents.create(
                {"name": f"agent-{i}", "model": "claude-sonnet-4-6", "metadata": {"team": "x"}}
            )
        first, second, third = await ClientBackedProvider(client).list_all("agent")
    assert first["model"]["id"] is second["model"]["id"] is third["model"]["id"]
    assert first["metadata"]["team"] is third["metadata"]["team"] == "x"
    assert first["id"] != second["id"]  # values are untouched, only shared


async def test_a_read_response_is_freed_without_the_garbage_collector(tmp_path: Path) -> None:
    """A response and its stream referred to each other: every list page stayed alive until
    the collector ran, and plan pauses it."""
    async with embedded_client(tmp_path / "p.db") as client:
        await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                await client.agents.list(include_archived=True).to_list()
            alive = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
        finally:
            gc.enable()
    assert alive == []
