"""The Managed Runtime Protocol: agents, environments and sessions at run time, in Python.

``ManagedRuntime`` offers PraisonAI's ``ManagedBackendProtocol`` surface (create / retrieve /
list / archive / delete of agents, environments and sessions; ``send_event``,
``stream_events``, ``interrupt``; agent version pinning) over ``reconciler.provider``'s
client, with the wire of provider-wire.md as the authority. Without a provider URL (argument
or ``RECONCILER_PROVIDER_URL``) it runs the embedded local provider in-process, like the CLI.
It never talks HTTP itself and raises the client's typed errors (``reconciler.errors``).

Quick start (the embedded provider echoes each message back):

    import asyncio
    from reconciler.runtime import ManagedRuntime, ManagedConfig

    async def main() -> None:
        config = ManagedConfig(name="coder", model="claude-sonnet-4-6")
        async with ManagedRuntime(config) as rt:
            agent_id = await rt.create_agent()
            env_id = await rt.create_environment(reuse=True)
            session_id = await rt.create_session(agent_id, env_id)
            async for event in rt.run_turn(session_id, "hello"):
                print(event["type"])

    asyncio.run(main())

prints the turn's events, ending with the idle event::

    user.message
    session.status_running
    agent.message
    session.status_idle

``run_turn`` opens the stream before it sends, so no event is lost; the same by hand is
``async with rt.stream_events(sid) as events: await rt.send_event(sid, "hello"); ...``.
"""

from __future__ import annotations

from reconciler.runtime.config import (
    DEFAULT_TOOLS,
    PACKAGE_MANAGERS,
    ManagedConfig,
    NetworkingConfig,
    PackagesConfig,
)
from reconciler.runtime.runtime import DEFAULT_DB_PATH, ManagedRuntime
from reconciler.runtime.streams import (
    SessionEventStream,
    Turn,
    as_events,
    ends_turn,
    user_message,
)

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_TOOLS",
    "PACKAGE_MANAGERS",
    "ManagedConfig",
    "ManagedRuntime",
    "NetworkingConfig",
    "PackagesConfig",
    "SessionEventStream",
    "Turn",
    "as_events",
    "ends_turn",
    "user_message",
]
