"""``schema``: the JSON Schema of manifests, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.app import manifest_json_schema
from reconciler.cli.app import out_file_option


def register(group: click.Group) -> None:
    group.add_command(schema)


@click.command()
@out_file_option("Write the schema to FILE instead of stdout.")
def schema(out: Path | None) -> None:
    """Print the JSON Schema of manifest documents (indent 2).

    \b
    For editors, write it where the example manifests look for it (--out never makes a
    missing folder):
      mkdir -p .reconciler && reconciler schema --out .reconciler/manifest.schema.json
    and start each manifest under manifests/ with
      # yaml-language-server: $schema=../.reconciler/manifest.schema.json
    """
    text = json.dumps(manifest_json_schema(), indent=2, sort_keys=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"Wrote the manifest JSON Schema to {out}", err=True)
