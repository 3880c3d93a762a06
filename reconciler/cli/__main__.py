"""``python -m reconciler.cli``: the command line, as the ``reconciler`` console script runs it
once started. The console script's entry is ``reconciler.launch`` (``python -m
reconciler.launch``), which also trims start-up. Both end a Ctrl-C while they import with
"Interrupted." (exit 130) instead of a traceback (here: ``reconciler.cli.starting``)."""

from reconciler.cli import main, starting

starting.restore()  # the command line is imported: a Ctrl-C from now on is the command's
main(prog_name="reconciler")
