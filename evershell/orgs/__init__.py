"""Organisations: the tenant boundary, with its billing posture."""
