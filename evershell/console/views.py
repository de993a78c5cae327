"""Console entry point: the signed-in home page, with "New task" (for those who may
submit one; ``tasks.views`` takes the form) and the caller's recent workspaces (the
navigation is already at the top of every page)."""

from flask import Blueprint, render_template

from evershell.access.principal import current_principal
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.pagination import MAX_LIMIT
from evershell.roles import services as roles
from evershell.tasks import services as tasks
from evershell.workspaces import services as workspaces

blp = Blueprint("console", __name__)
RECENT = 5


@blp.get("/")
@console_page()
def home():
    principal = current_principal()
    recent = []
    if principal.has(Scope.WORKSPACE_READ_OWN):
        recent = workspaces.list_workspaces(principal, limit=RECENT, cursor=None,
                                            mine=True)["data"]
    # "New task" (seed 001) only for those who may submit one.
    task_roles = roles.list_roles(principal, MAX_LIMIT, None)["data"] \
        if tasks.can_submit(principal) else []
    return render_template("console/home.html", recent=recent, task_roles=task_roles,
                           can_submit=tasks.can_submit(principal), errors={}, values={},
                           role_names=workspaces.role_names(principal.org_id) if recent
                           else {})
