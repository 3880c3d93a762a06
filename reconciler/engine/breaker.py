"""The circuit breaker of an apply: stop dispatching once the provider is clearly down.

One job: count actions that ended because the provider could not be reached, and say when
enough of them came in a row to stop sending. The client owns the retries of transport
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

__all__ = ["CircuitBreaker"]


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
