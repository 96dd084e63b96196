"""SQL plumbing every package's tables run on, beneath the ledger and the policy.

Column types (`columns`), statements compiled once and run on the driver's cursor
(`prepared`), PostgreSQL's pipeline mode (`pipelining`), savepoints by a fixed name
(`savepoints`), the replay's read caches (`read_cache`) and the driver's errors as SQLAlchemy's
(`driver_errors`). It knows no table of its own and imports no package of the engine.
"""
