"""The console's own tables: operators, sign-in failures, the audit log and proposals."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from store.columns import UtcDateTime

metadata = MetaData()

NAME = 128

operators = Table(
    "operators",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("role", String(32), nullable=False),
    # Argon2id, PHC string format; NULL for an operator who signs in through OpenID Connect.
    Column("password_hash", String(256)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime),
)

signin_failures = Table(
    "signin_failures",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
Index("signin_failures_name_at", signin_failures.c.name, signin_failures.c.at)

operator_audit = Table(
    "operator_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("operator", String(NAME), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("details", JSON, nullable=False),
)
Index("operator_audit_subject", operator_audit.c.subject)

decision_proposals = Table(
    "decision_proposals",
    metadata,
    Column("proposal_id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("subject_id", String(NAME), nullable=False),
    Column("contract_id", String(NAME), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("moves_minor", BigInteger, nullable=False),
    # The event's `data` as proposed; it is published unchanged once approved.
    Column("data", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("proposed_by", String(NAME), nullable=False),
    Column("proposed_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("reviewed_by", String(NAME)),
    Column("reviewed_at", UtcDateTime),
    Column("event_id", String(NAME)),
)
Index("decision_proposals_status", decision_proposals.c.status, decision_proposals.c.proposed_at)

api_tokens = Table(
    "api_tokens",
    metadata,
    # The public part of a token, `rct_<token_id>_<secret>`: how a request's token is found.
    Column("token_id", String(32), primary_key=True),
    Column("owner", String(NAME), nullable=False),  # what `decided_by` carries
    Column("role", String(32), nullable=False),
    # SHA-256 of the secret part, hex: the secret itself is shown once and never stored.
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
