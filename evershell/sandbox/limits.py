"""Limits as caps.yaml names them, with the caps defaults filled in for None."""

from __future__ import annotations

from dataclasses import fields

from evershell.roles.capset import LIMITS
from evershell.sandbox.backend import Limits
from evershell.sandbox.execution import Budget


def budget_for(limits: Limits) -> Budget:
    """Every limit of ``limits``, each None replaced by its caps.yaml default."""
    values = {}
    for spec in fields(Limits):
        value = getattr(limits, spec.name)
        if value is None:
            value = LIMITS[spec.name].default
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"limit {spec.name} must be a positive whole number")
        values[spec.name] = value
    return Budget(**values)
