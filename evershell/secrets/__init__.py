"""Secrets (org-wide named values) and credentials (connection material for external
systems): encrypted at rest, write-only, redacted from everything a task emits."""
