"""The one error root of the project, shared by every layer.

Nothing here does I/O; every layer may import this module. HTTP status codes are
mapped to classes in exactly one place: ``reconciler.provider.client``. Each class carries
the exit code of the command it ends on the class (``exit_code``: 1 for all of them today).

    ReconcilerError
     +-- ManifestError          bad manifests; ``.issues`` lists every ManifestIssue (file:line:col)
     |    +-- PolicyError       a mandatory policy rule fails on a resource (``kind: Policy``)
     +-- FormatError            ``fmt`` would lose a comment or change the data; file left as is
     +-- PlanError              a plan cannot be built or a saved plan is stale/unusable
     +-- ApplyError             some actions failed; ``.failures`` maps address -> message
     +-- RunError               ``run`` cannot start: unknown name, not applied, no environment
     +-- LockfileError          the lockfile does not parse or is from a newer version
     +-- LockHeld               another apply holds the lock; ``.holder`` says who
     +-- ApplyStopped           the apply must stop at once: send and record nothing more
     |    +-- LockLost          the apply lock was taken over (or removed) while held
     +-- ProviderError          the provider said no, or could not be reached
          +-- ProviderConnectionError   no HTTP response at all (after retries)
          +-- AmbiguousWriteError       a non-idempotent write may or may not have happened
          +-- BadRequestError           400
          +-- AuthenticationError       401
          +-- PermissionDeniedError     403
          +-- NotFoundError             404
          +-- ConflictError             409 (e.g. agent version precondition failed)
          +-- RateLimitError            429 (``.retry_after`` seconds)
          +-- ServerError               5xx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ReconcilerError(Exception):
    """Root of every error the reconciler raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in one manifest, at one place."""

    file: str
    line: int
    col: int
    message: str
    path: str = ""  # dotted field path inside the document, e.g. "spec.model"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ManifestError(ReconcilerError):
    """The manifests are invalid. ``issues`` holds every problem found, in file order."""

    def __init__(self, issues: list[ManifestIssue] | ManifestIssue) -> None:
        if isinstance(issues, ManifestIssue):
            issues = [issues]
        self.issues: list[ManifestIssue] = list(issues)
        n = len(self.issues)
        head = f"{n} error{'s' if n != 1 else ''} in manifests"
        super().__init__(head + ":\n" + "\n".join(f"  {i}" for i in self.issues))


class PolicyError(ManifestError):
    """Resources break mandatory policy rules; each issue names the resource's place, the
    rule's message and its policy. Nothing was changed. ``advisories`` are the advisory
    findings of the same check, for the warnings said beside the error."""

    def __init__(
        self,
        issues: list[ManifestIssue] | ManifestIssue,
        advisories: list[ManifestIssue] | None = None,
    ) -> None:
        super().__init__(issues)
        self.advisories: list[ManifestIssue] = list(advisories or ())
        n = len(self.issues)
        head = f"{n} mandatory policy {'rule fails' if n == 1 else 'rules fail'}"
        ReconcilerError.__init__(
            self,
            head + " (nothing was changed):\n" + "\n".join(f"  {i}" for i in self.issues),
        )


class FormatError(ReconcilerError):
    """``fmt`` cannot format a file without losing something; the file is left as it is."""

    exit_code = 1


class PlanError(ReconcilerError):
    """A plan cannot be built, or a saved plan cannot be applied.

    ``address`` and ``field`` name the manifest value at fault, when one is (a pin to a
    version that does not exist): the application layer, which knows where documents are
    written, puts its ``file:line:col`` in front of the message (``app.plan.placed``).
    """

    def __init__(
        self,
        message: str,
        *,
        stale: list[str] | None = None,
        address: str | None = None,
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.stale: list[str] = list(stale or [])
        self.address = address
        self.field = field


class ApplyError(ReconcilerError):
    """Apply finished with failures. What succeeded is already in the lockfile."""

    def __init__(self, message: str, *, failures: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failures: dict[str, str] = dict(failures or {})


class RunError(ReconcilerError):
    """``run`` cannot start: unknown name, not applied yet, no environment to use."""

    exit_code = 1


class ConfigurationError(ReconcilerError, ValueError):
    """A setting no request can be made with (an API key no HTTP header can carry); said
    before anything is sent, without showing a secret value."""


class LockfileError(ReconcilerError):
    """The lockfile cannot be read or written safely; it is left untouched."""


class LockHeld(ReconcilerError):
    """Another process holds the apply lock."""

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder: dict[str, Any] = dict(holder or {})


class ApplyStopped(ReconcilerError):
    """The apply must stop before its next write: nothing more is sent or recorded by it.

    Raised from inside an apply (a provider write or a lockfile write refuses to go ahead);
    the executor does not turn it into one action's failure but stops the whole run.
    """


class LockLost(ApplyStopped):
    """The apply lock this process held was taken over by another apply, or removed.

    Attributes:
        holder: the lock now on disk as a dict (``LockInfo``), empty when nobody holds it.
    """

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder: dict[str, Any] = dict(holder or {})


class ProviderError(ReconcilerError):
    """The provider rejected a request or could not be reached.

    Attributes:
        status: HTTP status, or None when no response arrived.
        error_type: the envelope's ``error.type`` (e.g. ``not_found_error``).
        error_code: the envelope's ``error.details.error_code`` when present.
        request_id: the ``request-id`` header / envelope field, for support tickets.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.request_id = request_id
        self.method = method
        self.path = path

    def details(self) -> dict[str, Any]:
        """What this error carries besides its message, as keywords: to raise another error
        about the same request with other words (``ConflictError(message, **e.details())``)."""
        return {
            "status": self.status,
            "error_type": self.error_type,
            "error_code": self.error_code,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
        }


class ProviderConnectionError(ProviderError):
    """No HTTP response was received (connect failure, timeout, dropped connection)."""


class AmbiguousWriteError(ProviderError):
    """A non-idempotent write failed in a way that it may have been applied anyway.

    The caller must look the resource up (e.g. by ownership metadata) before retrying.
    """


class BadRequestError(ProviderError):
    """400: the request is invalid."""


class AuthenticationError(ProviderError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(ProviderError):
    """403: the key may not do this."""


class NotFoundError(ProviderError):
    """404: no such resource."""


class ConflictError(ProviderError):
    """409: a precondition failed (stale agent version, duplicate name or key)."""


class RateLimitError(ProviderError):
    """429: too many requests; ``retry_after`` is in seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ProviderError):
    """5xx: the provider failed."""


def a_or_an(noun: str) -> str:
    """``noun`` with its indefinite article, for messages that name a kind: ``an agent``,
    ``an Environment``, ``a vault``, ``a deployment``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
