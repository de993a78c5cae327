"""Cross-domain building blocks: ids, errors, request ids, database helpers, Redis."""
