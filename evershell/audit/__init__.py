"""The audit log: one entry per mutation, written in the mutation's transaction."""
