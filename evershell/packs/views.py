"""Console: Settings → Packs (upload with progress, versions and files, archive, delete).

The list page and each pack's page re-render their panel fragment for htmx
(``templates/packs/_list.html``, ``_pack.html``) or the whole page without it. Refusals
a person can fix (a bad path, a taken name, an archived pack) show inline; htmx swaps
only 2xx answers, so those are 200.
"""

from __future__ import annotations

import posixpath

from flask import Blueprint, flash, redirect, render_template, request, url_for

from evershell.access import billing
from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org
from evershell.packs import http, multipart, services, uploads, versions

blp = Blueprint("packs_views", __name__, url_prefix="/settings/packs")
LIST_LIMIT = 200  # one page is plenty for a settings screen


@blp.before_request
def _spool_uploads():
    if request.method == "POST" and request.mimetype == "multipart/form-data":
        multipart.install(request)


@blp.teardown_request
def _release_uploads(_exc):
    multipart.release()


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _common() -> dict:
    org = db.session.get(Org, current_principal().org_id)
    return {"can_create": billing.can_create(org), "limits": uploads.limits()}


def _render_list(status: int = 200, **context):
    archived = request.values.get("archived") == "true"
    packs = services.list_packs(current_principal(), LIST_LIMIT, None, archived=archived)
    template = "packs/_list.html" if _htmx() else "packs/index.html"
    return render_template(template, packs=packs["data"], archived=archived,
                           **_common(), **context), status


def _render_pack(pack_id: str, status: int = 200, **context):
    principal = current_principal()
    pack, version = versions.get_version(principal, pack_id, request.args.get("version"))
    history = versions.list_versions(principal, pack_id, LIST_LIMIT, None)["data"]
    template = "packs/_pack.html" if _htmx() else "packs/pack.html"
    return render_template(template, pack=pack, version=version, versions=history,
                           files=versions.files_of(version),
                           status_of=services.status_of, mount_path=services.mount_path,
                           **_common(), **context), status


def _failure(exc: EvershellError) -> dict:
    """What a refused change shows: the message, and per-field (or per-path) reasons."""
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    return {"error": exc.message, "errors": (exc.details or {}).get("fields") or {}}


def _status(exc: EvershellError) -> int:
    return 200 if _htmx() else exc.status


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _console_upload():
    """The upload's parts; a folder picked in the browser arrives as ``<folder>/…``
    paths, and its own name is dropped so its contents land at the pack's root."""
    files, archive = http.read_upload(request)
    if request.form.get("folder") and files:
        names = [name or "" for name, _stream in files]
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) == 1 and all("/" in name for name in names):
            files = [(name.split("/", 1)[1], stream) for name, (_, stream) in
                     zip(names, files, strict=True)]
    return files, archive


@blp.get("")
@console_page(requires=Scope.PACKS_READ)
def index():
    return _render_list()


@blp.post("")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.CREATE, action="pack.create")
def create():
    form = request.form
    try:
        files, archive = _console_upload()
        pack = services.create(current_principal(), form.get("name"), form.get("description"),
                               files=files, archive=archive)
        summary = f"“{pack.name}” version 1: {_files(pack.latest.file_count)}"
        db.session.commit()
    except EvershellError as exc:
        return _render_list(status=_status(exc), form=form, **_failure(exc))
    return _render_list(notice=f"Uploaded {summary}.")


@blp.get("/<pack_id>")
@console_page(requires=Scope.PACKS_READ)
def show(pack_id: str):
    return _render_pack(pack_id)


def _change(pack_id: str, action, notice: str):
    try:
        result = action(current_principal(), pack_id)
        db.session.commit()
    except EvershellError as exc:
        return _render_pack(pack_id, status=_status(exc), **_failure(exc))
    return _render_pack(pack_id, notice=notice.format(result=result))


@blp.post("/<pack_id>/versions")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.CREATE,
              action="pack.version_create")
def add_version(pack_id: str):
    def upload(principal, pack_id):
        files, archive = _console_upload()
        version, created = services.add_version(principal, pack_id, files=files,
                                                archive=archive)
        return (f"Uploaded version {version.number}: {_files(version.file_count)}."
                if created else f"Nothing changed: this is exactly version {version.number}.")
    return _change(pack_id, upload, "{result}")


@blp.post("/<pack_id>/description")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.CREATE, action="pack.update")
def update(pack_id: str):
    def save(principal, pack_id):
        return services.update(principal, pack_id, request.form.get("description", ""))
    return _change(pack_id, save, "Description saved.")


@blp.post("/<pack_id>/archive")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.WIND_DOWN, action="pack.archive")
def archive(pack_id: str):
    return _change(pack_id, services.archive,
                   "Archived. It is read-only until you unarchive it.")


@blp.post("/<pack_id>/unarchive")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.CREATE, action="pack.unarchive")
def unarchive(pack_id: str):
    return _change(pack_id, services.unarchive, "Unarchived.")


@blp.post("/<pack_id>/delete")
@console_page(requires=Scope.PACKS_WRITE, billing=Billing.WIND_DOWN, action="pack.delete")
def delete(pack_id: str):
    try:
        name = services.delete(current_principal(), pack_id).name
        db.session.commit()
    except EvershellError as exc:
        return _render_pack(pack_id, status=_status(exc), **_failure(exc))
    flash(f"Deleted pack “{name}” with all its versions.", "success")
    target = url_for("packs_views.index")
    if _htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@blp.get("/<pack_id>/files/<path:file_path>")
@console_page(requires=Scope.PACKS_READ)
def download(pack_id: str, file_path: str):
    row, stream = versions.open_file(current_principal(), pack_id, file_path,
                                     request.args.get("version"))
    return http.file_response(request, stream, posixpath.basename(row.path), row.size,
                              row.digest)
