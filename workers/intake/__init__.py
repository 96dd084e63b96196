"""The ordered intake: envelopes judged and sequenced as the broker delivered them, then
applied in that order per ordering key (MESSAGES.md, "Transport" and "Ordering").

One message's way: the intake consumer (`consumer`) reads a bare JSON envelope from the queue
behind the `refunds.events` exchange, judges it (`judge`: limits, producer, routing key),
appends it to the event log in one transaction with the rest of its batch (`log`), acks the
batch, and nudges the partitions it touched. A nudge is one of the engine's own Dramatiq
messages; the worker thread that takes it drains that partition (`drain`): the pending events
below the next tick, in log order, several to a transaction with a savepoint each. An event
whose subject is not known yet parks its key (`parking`); the key's later events wait behind
it, other keys go on. A tick fires once every event before it is applied, dead-lettered or
parked (`barrier`). Every step applied is numbered (`steps`), so `recourse verify` can apply
the same steps again on a scratch store and compare the books.
"""
