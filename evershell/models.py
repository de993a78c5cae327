"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from evershell.access.models import Membership, User  # noqa: F401
from evershell.orgs.models import Org  # noqa: F401
