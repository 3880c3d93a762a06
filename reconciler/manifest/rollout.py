"""The ``rollout:`` block of a Deployment: the checks a new agent version must pass first.

A check is a message sent in a new session pinned to the candidate version; it passes when
the agent's reply holds every string of ``contains`` and (with ``rubric``) the provider's
outcome grader is satisfied. Only the shapes live here; running them is the engine's and the
application's job. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .fields import NonEmptyStr, SpecModel

#: Seconds a check may take when it does not say: a real model turn with tools can take
#: minutes, and a check that hangs must still end the apply.
DEFAULT_CHECK_TIMEOUT = 300.0
MAX_CHECK_TIMEOUT = 3600.0
MAX_CHECKS = 20


class RolloutCheck(SpecModel):
    """One check: a message, and what the reply must hold."""

    message: NonEmptyStr = Field(description="The user message sent in the check session.")
    contains: Annotated[list[NonEmptyStr], Field(max_length=50)] = Field(
        default_factory=list, description="Every string must be in the agent's reply."
    )
    rubric: NonEmptyStr | None = Field(
        default=None,
        description="Graded by the provider's outcome grader; the check needs `satisfied`.",
    )
    timeout: Annotated[float, Field(gt=0, le=MAX_CHECK_TIMEOUT)] = Field(
        default=DEFAULT_CHECK_TIMEOUT,
        description="Seconds before the check fails as timed out (default 300).",
    )


class Rollout(SpecModel):
    """How a new agent version reaches the deployment: after every check passes."""

    checks: Annotated[list[RolloutCheck], Field(min_length=1, max_length=MAX_CHECKS)] = Field(
        description="Checks run concurrently in new sessions pinned to the candidate version."
    )
