"""What an account's name says about it: whether it may go negative and whether it is hot.

The prefix before the first colon decides, so every account of a kind behaves alike and the
flags never need to be passed around. The flags are copied onto the account's row when it
opens, where the database's own checks read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import CurrencyMismatch, InvalidTransfer

POINTS_CURRENCY = "PTS"
MAX_NAME_LENGTH = 200

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    may_go_negative: bool
    # Hot accounts are touched by nearly every transfer, so their balance is spread over shard
    # rows: concurrent transactions then rarely wait on one row's lock.
    hot: bool


_POLICIES: dict[str, AccountPolicy] = {
    # A user may owe the platform (a clawback after release, SC-5).
    "user": AccountPolicy(may_go_negative=True, hot=False),
    # Escrow never pays out more than was funded.
    "escrow": AccountPolicy(may_go_negative=False, hot=False),
    # A pending payout is money already taken from a user's balance, so it cannot go below 0.
    "payout": AccountPolicy(may_go_negative=False, hot=False),
    # Points may be owed back after a cash-out (SC-10).
    "points": AccountPolicy(may_go_negative=True, hot=False),
    # The platform's books and the outside world's mirror accounts take the other side of
    # every movement, so their sign is whatever the flows make it.
    "platform": AccountPolicy(may_go_negative=True, hot=True),
    "external": AccountPolicy(may_go_negative=True, hot=True),
}

# Points are not money: only points accounts hold them, and they hold nothing else. The
# platform and external sides may hold either, as the counterparty of both kinds of flow.
_POINTS_ONLY = frozenset({"points"})
_MONEY_ONLY = frozenset({"user", "escrow", "payout"})


def policy_for(name: str) -> AccountPolicy:
    """The policy of the account called `name`; an unknown kind is an InvalidTransfer."""
    prefix, colon, rest = name.partition(":")
    if not colon or not rest or len(name) > MAX_NAME_LENGTH:
        raise InvalidTransfer(f"account name {name!r} is not <kind>:<id> of at most 200 chars")
    policy = _POLICIES.get(prefix)
    if policy is None:
        raise InvalidTransfer(f"account kind {prefix!r} of {name!r} is unknown")
    return policy


def check_account(name: str, currency: str) -> AccountPolicy:
    """The policy of account (`name`, `currency`) once both are known to be valid together."""
    policy = policy_for(name)
    if not _CURRENCY.fullmatch(currency):
        raise InvalidTransfer(f"currency {currency!r} is not an ISO 4217 code or PTS")
    prefix = name.partition(":")[0]
    is_points = currency == POINTS_CURRENCY
    if (prefix in _POINTS_ONLY and not is_points) or (prefix in _MONEY_ONLY and is_points):
        raise CurrencyMismatch(name, currency)
    return policy


# The platform's cost accounts: the book stores every account as credits - debits, but what a
# reader wants from these is what the platform bears, so reports show them debits - credits
# (MESSAGES.md: balances are "from the owner's side"; docs/money-flows.md).
COST_ACCOUNTS = frozenset({"platform:processor_fees", "platform:chargebacks"})


def owner_side_minor(name: str, book_balance_minor: int) -> int:
    """The balance as its owner reads it: a cost account's sign is flipped."""
    return -book_balance_minor if name in COST_ACCOUNTS else book_balance_minor


def owner_side_balances(book: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """`Book.balances()` as the replay report and the operator views show it."""
    return {
        name: {currency: owner_side_minor(name, amount) for currency, amount in by_currency.items()}
        for name, by_currency in book.items()
    }
