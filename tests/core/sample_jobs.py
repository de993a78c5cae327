"""A job used by the queue tests (RQ imports jobs by dotted path)."""

from evershell.orgs import services
from jobs import job


@job
def create_org(name: str, slug: str) -> str:
    return services.create_org(name, slug).id
