"""A ManagedRuntime kept between event loops: one ``asyncio.run`` per call, as a script or a
notebook cell does with a runtime used without ``async with``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.runtime import ManagedConfig, ManagedRuntime


def test_a_runtime_serves_one_asyncio_run_after_another(
    provider_url: str | None, tmp_path: Path
) -> None:
    runtime = ManagedRuntime(
        ManagedConfig(name="loops", env_name="loops-env"),
        provider_url=provider_url,
        api_key="local-provider" if provider_url else None,
        db_path=tmp_path / "provider.db",
        lockfile=tmp_path / "reconciler.lock",
    )
    asyncio.run(runtime.create_agent())
    asyncio.run(runtime.create_environment())
    session_id = asyncio.run(runtime.create_session())
    events = asyncio.run(runtime.run_turn(session_id, "again").collect())
    asyncio.run(runtime.aclose())

    assert [e["type"] for e in events][-2:] == ["agent.message", "session.status_idle"]
    assert events[-2]["content"][0]["text"] == "echo: again"
