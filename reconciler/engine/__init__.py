"""The engine: decide what should change, then make it so, without doing I/O itself.

Layer 3 of ``docs/architecture.md``. From the manifests' documents, what the provider holds
(read through ``ProviderReader``) and the lockfile, it builds a frozen ``Plan`` of actions;
it executes a plan through ``ProviderWriter`` and reports every outcome through callbacks the
caller commits. It never imports httpx, click, yaml or the filesystem: the provider and the
state are reached only through the protocols of ``interface``.

The public names, by module (import them from there; this package re-exports nothing, so
importing one part does not load the rest, e.g. deepdiff for ``diff``):

- ``model``: ``Plan``, the actions (``Create``, ``Update``, ``Replace``, ``Archive``,
  ``Delete``, ``NoOp``), ``FieldChange``, ``Target``, ``DriftReport``;
- ``interface``: ``ProviderReader``, ``ProviderWriter``, ``AmbiguityResolver``,
  ``SecretResolver``;
- ``refresh``: ``refresh``, the observed state (one paged list per kind);
- ``planner``: ``build_plan``, ``PlanOptions``, ``targeted_addresses``;
- ``executor``: ``apply_plan``, ``ApplyReport``, ``Outcome`` (with ``breaker``'s
  ``CircuitBreaker``);
- ``record``: ``record_intent(s)``, ``record_outcome``; ``intents``: ``leftover_intents``;
- ``drift``: ``build_drift``; ``importing``: ``derive_documents``.
"""
