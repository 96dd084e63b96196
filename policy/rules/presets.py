"""Where the two presets' workflows differ, named once (docs/policy.md: no hidden special cases).

Numbers (fees, windows) live in the preset files; these are the differences of *flow*, which
follow the preset's family: a policy file can retune `spectrum` or `cadcrowd`, not mix them.
"""

from __future__ import annotations

from policy.config import PolicyConfig


def requests_go_to_creator(policy: PolicyConfig) -> bool:
    """CC-2: a refund request waits for the creator's (or support's) decision.

    Otherwise (SC-2, SC-3) the engine decides at once: an automatic refund, or a dispute.
    """
    return policy.family == "cadcrowd"


def released_counts_as_accepted(policy: PolicyConfig) -> bool:
    """CC-10: a released milestone is accepted work, never disputed.

    Otherwise (SC-4) the client may dispute it until its window closes, and the engine marks
    it final at that deadline.
    """
    return policy.family == "cadcrowd"
