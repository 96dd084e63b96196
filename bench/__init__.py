"""Benchmarks of the engine on this machine's PostgreSQL and RabbitMQ: `python -m bench run`.

Each benchmark divides what it measures by a reference measured in the same run, so its
headline figure holds on a busier or a faster machine. docs/performance.md has the results.
"""
