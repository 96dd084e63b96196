"""Why money moved: the code every transfer carries, so a statement or an audit can tell a
release from a refund without reading the event that caused it."""

from __future__ import annotations

from enum import StrEnum


class TransferCode(StrEnum):
    FUNDING = "funding"
    CLIENT_FEE = "client_fee"
    PROCESSOR_FEE = "processor_fee"
    RELEASE = "release"
    CREATOR_FEE = "creator_fee"
    REFUND = "refund"
    CLIENT_FEE_REVERSAL = "client_fee_reversal"
    CREATOR_FEE_REVERSAL = "creator_fee_reversal"
    CLAWBACK = "clawback"
    PROCESSOR_FEE_DEDUCTION = "processor_fee_deduction"
    PROCESSOR_FEE_REFUND = "processor_fee_refund"
    PASS_THROUGH = "pass_through"
    CHARGEBACK = "chargeback"
    CHARGEBACK_RECOVERY = "chargeback_recovery"
    ISSUER_FEE_PASS_BACK = "issuer_fee_pass_back"
    INVOICE_PAYMENT = "invoice_payment"
    ADDON_PURCHASE = "addon_purchase"
    ADDON_REFUND = "addon_refund"
    POINTS_AWARD = "points_award"
    POINTS_CLAWBACK = "points_clawback"
    POINTS_CASHOUT = "points_cashout"
    POINTS_CASHOUT_REVERSAL = "points_cashout_reversal"
    WITHDRAWAL = "withdrawal"
    CORRECTION = "correction"
