"""reconciler: keep managed agents, environments, vaults and deployments as YAML in git.

This package root only names the version; the layers live in the subpackages
(see docs/architecture.md): cli > render > engine, runtime > manifest, state > provider.
"""

from __future__ import annotations

__version__ = "0.2.0"
