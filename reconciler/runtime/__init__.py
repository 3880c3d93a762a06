"""The Managed Runtime Protocol: agents, environments and sessions at run time, in Python.

``ManagedRuntime`` offers PraisonAI's ``ManagedBackendProtocol`` surface (create / retrieve /
list / archive / delete of agents, environments and sessions; ``send_event``,
``stream_events``, ``interrupt``; agent version pinning) over ``reconciler.provider``'s
client, with the wire of provider-wire.md as the authority. Without a provider URL (argument
or ``RECONCILER_PROVIDER_URL``) it runs the embedded local provider in-process, like the CLI.
It never talks HTTP itself and raises the client's typed errors (``reconciler.errors``).

Quick start (the embedded provider echoes each message back; docs/runtime.md has more):

    import asyncio
    from reconciler.runtime import ManagedRuntime, ManagedConfig

    async def main() -> None:
        config = ManagedConfig(name="coder", model="claude-sonnet-4-6")
        async with ManagedRuntime(config) as rt:
            agent_id = await rt.create_agent()
            env_id = await rt.create_environment()   # created once, reused by later runs
            session_id = await rt.create_session(agent_id, env_id)
            await rt.send_event(session_id, "hello")
            async for event in rt.stream_events(session_id):   # ends with the turn
                print(event["type"])

    asyncio.run(main())

prints the turn's events, ending with the idle event::

    user.message
    session.status_running
    agent.message
    session.status_idle

The stream replays what was sent before it opened, so either order works; ``run_turn(sid,
"hello")`` does both in one call. Without ``async with`` the runtime connects on first use;
``await rt.aclose()`` closes it. ``rt.agent("coder")`` and friends return the ids that
``reconciler apply`` recorded in the lockfile.
"""

from __future__ import annotations

from reconciler.runtime import streams, turns
from reconciler.runtime.applied import NotApplied, OriginMismatch
from reconciler.runtime.config import (
    DEFAULT_TOOLS,
    PACKAGE_MANAGERS,
    ManagedConfig,
    NetworkingConfig,
    PackagesConfig,
)
from reconciler.runtime.runtime import DEFAULT_DB_PATH, ManagedRuntime
from reconciler.runtime.streams import (
    SentLedger,
    SessionEventStream,
    as_events,
    ends_turn,
    user_message,
)
from reconciler.runtime.turns import Turn

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_TOOLS",
    "PACKAGE_MANAGERS",
    "ManagedConfig",
    "ManagedRuntime",
    "NetworkingConfig",
    "NotApplied",
    "OriginMismatch",
    "PackagesConfig",
]
# the event streams' public names are the package's too (as asyncio joins its modules')
__all__ += streams.__all__ + turns.__all__
