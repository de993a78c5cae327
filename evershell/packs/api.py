"""``/v1/packs``."""

from __future__ import annotations

import posixpath

from flask import request
from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint, ErrorSchema
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import PageArgsSchema, page_schema
from evershell.packs import http, multipart, services, versions
from evershell.packs.schemas import (
    FileListArgsSchema,
    PackCreateFormSchema,
    PackFilePageSchema,
    PackListArgsSchema,
    PackSchema,
    PackUpdateSchema,
    PackVersionDetailSchema,
    PackVersionFormSchema,
    PackVersionSchema,
    VersionArgsSchema,
)

blp = Blueprint("packs", __name__, url_prefix="/v1/packs",
                description="Content packs: versioned, content-hashed file sets that "
                            "workspaces mount read-only at /data/packs/<name>/.")
READ, WRITE = Scope.PACKS_READ, Scope.PACKS_WRITE
MULTIPART = "multipart/form-data"
NOT_FOUND = "pack_not_found"
VERSION_NOT_FOUND = "pack_not_found or version_not_found"
UPLOAD_ERRORS = "validation_error: a refused path, a limit, or a malformed upload"


@blp.before_request
def _spool_uploads():
    if request.method == "POST" and request.mimetype == MULTIPART:
        multipart.install(request)


@blp.teardown_request
def _release_uploads(_exc):
    multipart.release()


@blp.route("")
class Packs(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(PackListArgsSchema, location="query")
    @blp.response(200, page_schema(PackSchema, "PackPage"))
    def get(self, args):
        """List packs, newest first: active ones, or archived ones with `?archived=true`."""
        return services.list_packs(current_principal(), args["limit"], args["cursor"],
                                   archived=args["archived"])

    @declare(WRITE, Billing.CREATE, action="pack.create")
    @blp.arguments(PackCreateFormSchema, location="form", content_type=MULTIPART)
    @blp.response(201, PackSchema)
    @blp.alt_response(400, schema=ErrorSchema, description=UPLOAD_ERRORS)
    @blp.alt_response(409, schema=ErrorSchema, description="name_taken")
    @blp.alt_response(413, schema=ErrorSchema, description="payload_too_large")
    @blp.errors(E.NAME_TAKEN)
    def post(self, form):
        """Create a pack from a multipart upload: `name`, optional `description`, and
        either repeated `files` parts or one `archive` part (see the fields for the
        rules and limits). It gets version 1."""
        files, archive = http.read_upload(request)
        return services.create(current_principal(), form["name"], form["description"],
                               files=files, archive=archive)


@blp.route("/<id:pack_id>")
class PackById(MethodView):
    @declare(READ, Billing.READ)
    @blp.response(200, PackSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.errors(E.PACK_NOT_FOUND)
    def get(self, pack_id):
        """Get one pack, archived or not, with a summary of its latest version."""
        return services.get(current_principal(), pack_id)

    @declare(WRITE, Billing.CREATE, action="pack.update")
    @blp.arguments(PackUpdateSchema)
    @blp.response(200, PackSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema, description="pack_archived (unarchive first)")
    @blp.errors(E.PACK_NOT_FOUND, E.PACK_ARCHIVED)
    def patch(self, data, pack_id):
        """Change the description. The name is the mount directory and never changes;
        the files change by uploading a new version."""
        return services.update(current_principal(), pack_id, data["description"])

    @declare(WRITE, Billing.WIND_DOWN, action="pack.delete")
    @blp.response(200, PackSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema,
                      description="pack_in_use: a role mounts it (`details.role_ids`)")
    @blp.errors(E.PACK_NOT_FOUND, E.PACK_IN_USE)
    def delete(self, pack_id):
        """Delete a pack with all its versions; answers with it as it was (`status`
        `deleted`). Refused while any version of a role mounts it. Stored content that
        no other pack of the organisation shares is deleted too."""
        return services.delete(current_principal(), pack_id)


@blp.route("/<id:pack_id>/archive", methods=["POST"])
@declare(WRITE, Billing.WIND_DOWN, action="pack.archive")
@blp.response(200, PackSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.PACK_NOT_FOUND)
def archive(pack_id):
    """Archive: listed only with `?archived=true`, read-only (no new versions or edits)
    until unarchived. Works in every billing posture."""
    return services.archive(current_principal(), pack_id)


@blp.route("/<id:pack_id>/unarchive", methods=["POST"])
@declare(WRITE, Billing.CREATE, action="pack.unarchive")
@blp.response(200, PackSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
@blp.errors(E.PACK_NOT_FOUND)
def unarchive(pack_id):
    """Make an archived pack writable and listed again."""
    return services.unarchive(current_principal(), pack_id)


@blp.route("/<id:pack_id>/versions")
class PackVersions(MethodView):
    @declare(READ, Billing.READ)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(PackVersionSchema, "PackVersionPage"))
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.errors(E.PACK_NOT_FOUND)
    def get(self, args, pack_id):
        """List a pack's versions, newest first."""
        return versions.list_versions(current_principal(), pack_id, args["limit"],
                                      args["cursor"])

    @declare(WRITE, Billing.CREATE, action="pack.version_create")
    @blp.arguments(PackVersionFormSchema, location="form", content_type=MULTIPART)
    @blp.response(201, PackVersionSchema)
    @blp.alt_response(200, schema=PackVersionSchema,
                      description="The content equals the latest version's: nothing was "
                                  "recorded; this is that version")
    @blp.alt_response(400, schema=ErrorSchema, description=UPLOAD_ERRORS)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema, description="pack_archived (unarchive first)")
    @blp.alt_response(413, schema=ErrorSchema, description="payload_too_large")
    @blp.errors(E.PACK_NOT_FOUND, E.PACK_ARCHIVED)
    def post(self, form, pack_id):
        """Upload a new version: repeated `files` parts or one `archive` part, as for
        creating a pack. The whole file set is replaced (files not uploaded are not in
        the new version). Uploading exactly the latest version's content again records
        nothing and answers 200 with that version."""
        files, archive_part = http.read_upload(request)
        version, created = services.add_version(current_principal(), pack_id,
                                                files=files, archive=archive_part)
        return version, 201 if created else 200


@blp.route("/<id:pack_id>/versions/<number>", methods=["GET"])
@declare(READ, Billing.READ)
@blp.response(200, PackVersionDetailSchema)
@blp.alt_response(404, schema=ErrorSchema, description=VERSION_NOT_FOUND)
@blp.errors(E.PACK_NOT_FOUND, E.VERSION_NOT_FOUND)
def get_version(pack_id, number):
    """Get one version with its file list."""
    return versions.get_version(current_principal(), pack_id, number)[1]


@blp.route("/<id:pack_id>/files", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(FileListArgsSchema, location="query")
@blp.response(200, PackFilePageSchema)
@blp.alt_response(404, schema=ErrorSchema, description=VERSION_NOT_FOUND)
@blp.errors(E.PACK_NOT_FOUND, E.VERSION_NOT_FOUND)
def list_files(args, pack_id):
    """List the files of the latest version (or `?version=n`) by path, up to 1,000 a
    page; `next_cursor` continues."""
    return versions.list_files(current_principal(), pack_id, args["version"],
                               args["limit"], args["cursor"])


@blp.route("/<id:pack_id>/files/<path:file_path>", methods=["GET"])
@declare(READ, Billing.READ)
@blp.arguments(VersionArgsSchema, location="query")
@blp.doc(responses={"200": {
    "description": "The file's bytes, as an attachment (`Content-Disposition`), with "
                   "`Content-Type` guessed from its name, `X-Content-Type-Options: "
                   "nosniff`, and the content's SHA-256 as `ETag` (`If-None-Match` → "
                   "304; `Range` works).",
    "content": {"application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}},
}})
@blp.alt_response(404, schema=ErrorSchema,
                  description="pack_not_found, version_not_found or file_not_found")
@blp.errors(E.PACK_NOT_FOUND, E.VERSION_NOT_FOUND, E.FILE_NOT_FOUND)
def download(args, pack_id, file_path):
    """Download one file of the latest version (or `?version=n`)."""
    row, stream = versions.open_file(current_principal(), pack_id, file_path,
                                     args["version"])
    return http.file_response(request, stream, posixpath.basename(row.path),
                                   row.size, row.digest)
