"""``python -m reconciler.cli``: the command line, as the ``reconciler`` console script runs it
once started. The console script's entry is ``reconciler.launch`` (``python -m
reconciler.launch``), which also trims start-up and ends a Ctrl-C while it imports with
"Interrupted." instead of a traceback."""

from reconciler.cli import main

main(prog_name="reconciler")
