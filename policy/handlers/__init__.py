"""One module per area of inbound events: plain functions, which `policy.registry` names in its
table. A handler module imports no other handler module (`policy.subjects` holds what they
share); import-linter checks it."""
