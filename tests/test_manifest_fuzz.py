"""The loader never crashes: whatever a file holds, the result is a ManifestSet or ManifestError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestError
from reconciler.manifest import ManifestSet, load_manifests

FRAGMENTS = [
    "kind: Agent\n",
    "kind: Vault\n",
    "kind: Deployment\n",
    "name: a\n",
    "name: B\n",
    "spec:\n",
    "  model: m\n",
    "  tools:\n",
    "    - type: custom\n",
    "  credentials:\n",
    "    - name: c\n",
    "      auth: {type: static_bearer, token: x}\n",
    "---\n",
    "  agent: a\n",
    "  metadata: {managed-by: x}\n",
    "&a [1]\n",
    "*a\n",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "!!binary x\n",
    "${HOME}",
    "'",
    '"',
    "\\",
    "\x00",
    "\ufeff",
    "#",
    "|\n",
    ">-\n",
    "  ",
    "ignore_changes: [x]\n",
    "protect: yes\n",
    "~\n",
    "0x1f\n",
    ".nan\n",
    "1e400\n",
]


def _load(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_bytes(content)
        try:
            result = load_manifests(path)
        except ManifestError as exc:
            assert exc.issues, "a ManifestError always lists at least one issue"
            for issue in exc.issues:
                assert issue.line >= 1 and issue.col >= 1
                assert not issue.message.startswith("internal error"), issue
        else:
            assert isinstance(result, ManifestSet)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(content: bytes) -> None:
    _load(content)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(content: str) -> None:
    _load(content.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_manifest_like_text_never_crashes(fragments: list[str]) -> None:
    _load("".join(fragments).encode("utf-8", "surrogatepass"))
