"""``python -m reconciler``: the ``reconciler`` command where its console script is not on PATH,
started by the console script's own entry (``reconciler.launch``)."""

from reconciler.launch import run

run()
