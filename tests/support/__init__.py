"""Shared test machinery, no tests: ``golden`` (golden files), ``gitops`` (work directories
and the command line), ``local_provider`` (httpx over the local app), ``reliability``
(faults, crashes, forked processes)."""
