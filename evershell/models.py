"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

import evershell.packs.models  # noqa: E402,F401
import evershell.providers.models  # noqa: E402,F401
import evershell.roles.models  # noqa: E402,F401
import evershell.secrets.models  # noqa: E402,F401
import evershell.tasks.models  # noqa: E402,F401
import evershell.workspaces.models  # noqa: E402,F401
from evershell.access.idempotency import IdempotencyKey  # noqa: F401
from evershell.access.models import ConsoleSession, Invitation, Membership, User  # noqa: F401
from evershell.apikeys.models import ApiKey  # noqa: F401
from evershell.audit.models import AuditEntry  # noqa: F401
from evershell.events.models import Event, EventStream  # noqa: F401
from evershell.orgs.models import Org  # noqa: F401
