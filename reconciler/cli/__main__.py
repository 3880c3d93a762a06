"""``python -m reconciler.cli``: the same as the ``reconciler`` console script."""

from reconciler.cli import main

main(prog_name="reconciler")
