"""Console: Settings → Members (invite by email, change roles, remove, revoke invitations).

Every action re-renders the list fragment for htmx (``templates/members/_list.html``) or
the whole page without it. Errors a person can fix (409 ``last_owner``, a mistyped
email, …) show inline in the fragment; htmx swaps only 2xx answers, so those are 200.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from evershell.access import billing
from evershell.access.models import Membership
from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Role, Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.members import services
from evershell.orgs.models import Org

blp = Blueprint("members_views", __name__, url_prefix="/settings/members")
LIST_LIMIT = 200  # one page is plenty for a settings screen


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _render(status: int = 200, **context):
    principal = current_principal()
    items = services.list_members(principal, LIST_LIMIT, None)["data"]
    members = [i for i in items if services.status_of(i) == services.ACTIVE]
    invitations = [i for i in items if services.status_of(i) == services.INVITED]
    org = db.session.get(Org, principal.org_id)
    owners = [m.id for m in members if m.role == Role.OWNER.value]
    template = "members/_list.html" if _htmx() else "members/index.html"
    return render_template(template, members=members, invitations=invitations,
                           # the service refuses to demote or remove it: not offered
                           sole_owner_id=owners[0] if len(owners) == 1 else None,
                           roles=[r.value for r in Role], invite_url=services.invite_url,
                           can_create=billing.can_create(org), **context), status


def _failed(exc: EvershellError, **context):
    """A service refusal shown next to the list: a 200 fragment for htmx, else the page
    with the error's own status."""
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    fields = (exc.details or {}).get("fields") or {}
    message = " ".join(" ".join(m) if isinstance(m, list) else str(m)
                       for m in fields.values()) if fields else exc.message
    return _render(status=200 if _htmx() else exc.status, error=message, errors=fields,
                   **context)


def _reload_page():
    """After changing one's own membership the page's controls are stale: reload it
    (the next request sees the new role, or signs a removed person out)."""
    target = url_for("members_views.index")
    if _htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@blp.get("")
@console_page(requires=Scope.MEMBERS_READ)
def index():
    return _render()


@blp.post("")
@console_page(requires=Scope.MEMBERS_WRITE, billing=Billing.CREATE, action="member.invite")
def invite():
    form = request.form
    try:
        invitation = services.invite(current_principal(), form.get("email", ""),
                                     form.get("role", ""))
        db.session.commit()
    except EvershellError as exc:
        return _failed(exc, form=form)
    return _render(notice=_invited_notice(invitation),
                   form={"role": invitation.role})  # the next invite starts from it


def _invited_notice(invitation) -> str:
    notice = f"Invited {invitation.email} as {invitation.role}. Send them the link " \
             "below; it works for 7 days."
    replaced = getattr(invitation, "replaced", None) or []
    if replaced:
        earlier = ", ".join(f"as {old.role}, sent {old.created_at:%Y-%m-%d %H:%M} UTC"
                            for old in replaced)
        notice += f" This replaces the earlier invitation ({earlier}): its link no " \
                  "longer works."
    return notice


def _describe(item) -> tuple[str, str | None]:
    """(email, user id) of a member or an invitation, read before the commit expires it."""
    if isinstance(item, Membership):
        return item.user.email, item.user_id
    return item.email, None


@blp.post("/<item_id>/role")
@console_page(requires=Scope.MEMBERS_WRITE, billing=Billing.CREATE,
              action="member.role_change")
def change_role(item_id: str):
    principal = current_principal()
    try:
        item = services.change_role(principal, item_id, request.form.get("role", ""))
        (email, user_id), role = _describe(item), item.role
        db.session.commit()
    except EvershellError as exc:
        return _failed(exc)
    if user_id == principal.user_id:
        return _reload_page()
    return _render(notice=f"{email} is now {role}.")


@blp.post("/<item_id>/remove")
@console_page(requires=Scope.MEMBERS_WRITE, billing=Billing.WIND_DOWN, action="member.remove")
def remove(item_id: str):
    principal = current_principal()
    try:
        item = services.remove(principal, item_id)
        email, user_id = _describe(item)
        db.session.commit()
    except EvershellError as exc:
        return _failed(exc)
    if user_id == principal.user_id:
        return _reload_page()
    if isinstance(item, Membership):
        notice = f"Removed {email}: their console sessions ended and their API keys " \
                 "stopped working."
    else:
        notice = f"Revoked the invitation for {email}."
    return _render(notice=notice)
