"""The operators' console: the dispute team's and support's web workplace and its JSON API.

It reads the engine's store with the operator queries of `workers.operator`, and acts only by
publishing events (`dispute.resolved`, `refund.approved`, `refund.declined`) through an
injected publisher, like any other producer. Its own tables hold the operators, the audit log
of their actions and the proposals that wait for a second pair of eyes (docs/policy.md, OP-2).
Nothing imports this package except the `recourse` CLI.
"""
