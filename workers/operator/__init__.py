"""Operator tools: what support agents and the dispute team run to read the engine's state.

Each module has one job: `database` opens a store for reading, `timeline`, `statements` and
`disputes` query it, `decisions` publishes a dispute decision, `render` draws the tables,
`commands` ties them together for the CLI, and `errors` turns any failure into one line.
Every query is read-only: an operator looks, and acts only by publishing an event.
"""
