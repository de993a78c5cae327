import marshmallow as ma
from flask_smorest.fields import Upload

from evershell.core.pagination import PageArgsSchema

_HASH = ("SHA-256 (hex) of the version's manifest: the JSON array of [path, file sha256, "
         "executable] sorted by path, compact, UTF-8. Equal file sets have equal hashes.")
_NAME = ("The pack's directory: it is mounted read-only at /data/packs/<name>/. 1-64 "
         "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit; "
         "unique in the organisation; never changes.")
_FILES = ("Repeat once per file. The part's filename is the file's path in the pack "
          "(`docs/guide.md`; browsers send the relative path for a `webkitdirectory` "
          "input). Refused: empty names, `..` segments, absolute paths and drive letters, "
          "backslashes, NUL and control characters, duplicates, a path that is also a "
          "directory, more than 255 bytes or 32 levels.")
_ARCHIVE = ("Instead of `files`: one .tar, .tar.gz (.tgz, bzip2, xz) or .zip archive, "
            "detected by content. Directories are implied; symbolic and hard links, "
            "devices, FIFOs and encrypted entries are refused. The executable bit is kept.")
_FILES += (" Limits (operator settings): 10,000 files, 25 MiB per file, 100 MiB per version "
           "by default; the request body itself is limited by EVERSHELL_MAX_BODY_BYTES "
           "(413). Each refusal is a 400 `validation_error` whose `details.fields.files` "
           "(or `.archive`) maps the refused path to its reasons.")


def _status(pack) -> str:
    from evershell.packs.services import status_of
    return status_of(pack)


def _mount(pack) -> str:
    from evershell.packs.services import mount_path
    return mount_path(pack)


class PackVersionSchema(ma.Schema):
    id = ma.fields.String()
    pack_id = ma.fields.String()
    number = ma.fields.Integer(metadata={"description": "1, 2, … in upload order"})
    content_hash = ma.fields.String(metadata={"description": _HASH})
    file_count = ma.fields.Integer()
    total_bytes = ma.fields.Integer(metadata={"description": "Sum of the files' sizes"})
    created_by_user_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class PackFileSchema(ma.Schema):
    path = ma.fields.String(metadata={"description": "Relative to the pack's root"})
    size = ma.fields.Integer()
    digest = ma.fields.String(metadata={"description": "SHA-256 (hex) of the content"})
    executable = ma.fields.Boolean(metadata={
        "description": "From the archive entry's mode; false for file parts"})


class PackVersionDetailSchema(PackVersionSchema):
    files = ma.fields.List(ma.fields.Nested(PackFileSchema), metadata={
        "description": "Every file of the version, by path"})

    @ma.pre_dump
    def _with_files(self, version, **_kwargs):
        from evershell.packs.versions import files_of
        return {**{name: getattr(version, name) for name in PackVersionSchema().fields},
                "files": files_of(version)}


class PackSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String(metadata={"description": _NAME})
    description = ma.fields.String()
    status = ma.fields.Function(_status, metadata={
        "enum": ["active", "archived", "deleted"],
        "description": "deleted only in the answer to DELETE"})
    mount_path = ma.fields.Function(_mount, metadata={
        "description": "Where workspaces see it (read-only)"})
    latest_version = ma.fields.Integer(metadata={"description": "The latest version's number"})
    latest = ma.fields.Nested(PackVersionSchema, allow_none=True,
                              metadata={"description": "The latest version"})
    created_by_user_id = ma.fields.String(allow_none=True)
    archived_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class PackListArgsSchema(PageArgsSchema):
    archived = ma.fields.Boolean(load_default=False, metadata={
        "description": "false (default): active packs; true: archived ones"})


class _UploadFields(ma.Schema):
    """Documents the file parts of the multipart body; they are read from the request's
    files (a `files` or `archive` part without a filename is refused)."""

    files = ma.fields.List(Upload(), load_default=list, metadata={"description": _FILES})
    archive = Upload(load_default=None, metadata={"description": _ARCHIVE})


class PackCreateFormSchema(_UploadFields):
    name = ma.fields.String(required=True, metadata={"description": _NAME})
    description = ma.fields.String(load_default="", metadata={"description": "At most 2000 "
                                                                             "characters"})


class PackVersionFormSchema(_UploadFields):
    pass


class PackUpdateSchema(ma.Schema):
    description = ma.fields.String(required=True, metadata={"description": "At most 2000 "
                                                                           "characters"})


class VersionArgsSchema(ma.Schema):
    version = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1),
                                metadata={"description": "Version number; default the latest"})


class FileListArgsSchema(VersionArgsSchema):
    limit = ma.fields.Integer(load_default=1000, validate=ma.validate.Range(min=1, max=1000))
    cursor = ma.fields.String(load_default=None)


class PackFilePageSchema(ma.Schema):
    version = ma.fields.Integer(required=True)
    data = ma.fields.List(ma.fields.Nested(PackFileSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)

