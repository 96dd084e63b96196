"""Pure rules: state, event data, policy and time in, a decision or a `Rejected` out.

Nothing here touches the database, the book or the clock, so every rule is a unit test away.
"""
