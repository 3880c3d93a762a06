"""Why an apply stops dispatching: the provider is clearly down, or the caller asked.

``StopRequest`` is the caller's "start no new action" (a first Ctrl-C). ``CircuitBreaker``
counts actions that ended because the provider could not be reached, and says when enough
of them came in a row to stop sending. The client owns the retries of transport
failures (``provider/retry.py``: 5 attempts with backoff over 6-8 s); an action that still
ends with ``ProviderConnectionError`` means the provider did not answer at all for that long.
The executor does not retry such an action again (that multiplied every wait by five); after
``threshold`` of them in a row, with no action in between that got any answer (even an error
status), it stops starting new actions, lets those in flight finish and reports the rest as
not attempted. Without this, a dead provider turned an apply of 300 resources into a
twenty-minute run of doomed attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import ProviderConnectionError, ProviderError

__all__ = ["CircuitBreaker", "StopRequest"]


@dataclass
class CircuitBreaker:
    """Consecutive unreachable actions; ``open`` once there were ``threshold`` in a row."""

    threshold: int = 3
    consecutive: int = 0
    last_error: ProviderConnectionError | None = None

    @property
    def open(self) -> bool:
        """The provider is down: start no new action."""
        return self.consecutive >= self.threshold

    def answered(self) -> None:
        """An action got an answer from the provider (any status): it is up."""
        if not self.open:
            self.consecutive = 0

    def failed(self, error: BaseException | None) -> None:
        """An action failed with ``error`` (or with no provider error: counts as neither)."""
        if isinstance(error, ProviderConnectionError):
            self.consecutive += 1
            self.last_error = error
        elif isinstance(error, ProviderError):
            self.answered()

    def reason(self) -> str:
        """Why the apply stopped: ``3 actions in a row got no answer from the provider``
        (each action's own failure names the URL and the error)."""
        return f"{self.consecutive} actions in a row got no answer from the provider"


@dataclass
class StopRequest:
    """A caller's "start no new action" (a first Ctrl-C): the actions in flight finish and
    are reported as usual, the rest are not attempted, and ``ApplyReport.stopped`` is
    ``reason``. Heard only while the executor dispatches (``dispatching``): ``request``
    returns False otherwise, and the caller stops its work its own way (a cancel)."""

    reason: str | None = None
    dispatching: bool = False

    def request(self, reason: str) -> bool:
        """Ask the running apply to start nothing more; False when none is dispatching."""
        if not self.dispatching:
            return False
        if self.reason is None:
            self.reason = reason
        return True
