"""The workload of ``bench_skills_apply.py``: N skills and N memory stores, one description
for both sides (the reconciler's manifests and the SDK script's calls). Imports nothing
heavy: the SDK script's start-up must not pay for the reconciler's."""

from __future__ import annotations

PROJECT = "bench"
SCRIPT = "# helper\n" + "total = 0\n" * 200  # ~2 KB


def skill_slug(i: int) -> str:
    return f"bench-skill-{i:03d}"


def skill_files(i: int) -> dict[str, str]:
    """The three files of benchmark skill ``i`` (path -> content)."""
    slug = skill_slug(i)
    return {
        "SKILL.md": f"---\nname: {slug}\ndescription: benchmark skill {i}\n---\nRun run.py.\n",
        "run.py": SCRIPT,
        "reference/usage.md": f"# {slug}\n\nCall it with one argument.\n",
    }


def store_fields(i: int) -> dict[str, object]:
    """A memory store's create fields as the reconciler sends them (ownership tags too)."""
    return {
        "name": f"bench-store-{i:03d}",
        "description": f"benchmark memory store {i}",
        "metadata": {
            "team": "bench",
            "managed-by": "reconciler",
            "reconciler-project": PROJECT,
            "reconciler-address": f"memory_store.bench-store-{i:03d}",
        },
    }
