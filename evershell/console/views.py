"""Console entry point: the signed-in home page, with the caller's recent workspaces
(the navigation is already at the top of every page)."""

from flask import Blueprint, render_template

from evershell.access.principal import current_principal
from evershell.access.scopes import Scope
from evershell.access.web import console_page
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
    return render_template("console/home.html", recent=recent,
                           role_names=workspaces.role_names(principal.org_id) if recent
                           else {})
