"""The PostgreSQL state backend (``--backend postgresql://...``): psycopg 3 lives here only.

    conninfo.py   the connection string: recognise, redact (the password is never printed),
                  connect (libpq's defaults, environment and TLS apply as usual)
    schema.py     the tables, created and migrated by the tool; a newer schema is refused
    store.py      PgStateStore: one row per resource, compare-and-swap on a row version,
                  each write a transaction costing O(the changed rows), with its history row
    lease.py      PgLease: the apply lease (holder, heartbeat, expiry), not a session lock
    location.py   PgLocation: the backend as the application sees it (read, lock, store,
                  history, unlock, migrate target)

Nothing outside ``reconciler.state`` imports this package, and ``reconciler.state`` imports it
only when a database is named, so commands that never touch one never load psycopg.
"""
