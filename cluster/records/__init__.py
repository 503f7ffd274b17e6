"""The records: PostgreSQL, the only place results are kept (DESIGN.md, contract 5).

- `recorder.Recorder`: the driver's one way to the database (idempotent upserts on
  natural keys; `queries.py` its reads, `sql.py` its statements, `lock.py` the lock a
  running ensemble holds, `retry.py` what is retried); `types.py` the records, statuses
  and errors; `exact.py` params and floats written bit for bit; `evaluations.py` the
  record of an extra backtest of an ensemble that is not a search trial (the report's
  consensus).
- `migrations.py` applies `sql/NNN_*.sql` once each; `database.py` chooses the server
  (`$DATABASE_URL` or the embedded one of `pg_server.py`, whose programs
  `pg_binaries.py` places where the server's user can run them).
- `export.py`: the canonical export and its sha256, which every determinism check
  compares.
- The commands `list`, `show`, `export` (`command_*.py`, sharing `command_options.py`).

Nothing here imports Ray; the package module itself imports nothing heavy.
"""
