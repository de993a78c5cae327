"""Files a task is submitted with: checked and stored in the blob store at request time,
written into ``/data/uploads/<task_id>/`` by the task's job before the agent starts.

Each task's files live in a blob namespace of their own (``uploads/<task_id>``), so a
request that fails after storing some leaves nothing: the namespace is removed when the
transaction rolls back, and after the job has copied the files into the workspace.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass

from flask import current_app
from werkzeug.datastructures import FileStorage

from evershell.core.blobs import BlobTooLarge, blob_root, blob_store
from evershell.core.db import on_rollback
from evershell.core.errors import validation_error
from evershell.extensions import db

MAX_FILES = 100
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


@dataclass(frozen=True)
class Upload:
    name: str
    digest: str
    size: int

    def as_dict(self) -> dict:
        return {"name": self.name, "digest": self.digest, "size": self.size}


def safe_name(raw: str | None) -> str | None:
    """A file name safe as one path component: the last component of what the client
    sent, NFC, no control or path characters, no leading dots, at most 255 bytes."""
    if not raw:
        return None
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    while len(name.encode()) > 255:
        name = name[:-1]
    return name or None


def namespace(task_id: str) -> str:
    return f"uploads/{task_id}"


def store(task_id: str, files: list[FileStorage]) -> list[Upload]:
    """Check and store ``files``; 400 with ``details.fields.file`` on any problem. The
    stored blobs disappear again if the request's transaction does not commit."""
    if not files:
        return []
    if len(files) > MAX_FILES:
        raise validation_error({"file": [f"At most {MAX_FILES} files per task."]})
    per_file = current_app.config["UPLOAD_MAX_FILE_BYTES"]
    total_limit = current_app.config["UPLOAD_MAX_BYTES"]
    on_rollback(db.session(), lambda: remove(task_id))
    store_ = blob_store(namespace(task_id))
    uploads: list[Upload] = []
    seen: set[str] = set()
    total = 0
    for part in files:
        name = safe_name(part.filename)
        if name is None:
            raise validation_error({"file": ["Every file part needs a file name."]})
        if name in seen:
            raise validation_error({"file": [f"Two files are named {name!r}."]})
        seen.add(name)
        try:
            blob = store_.put(part.stream, max_bytes=per_file)
        except BlobTooLarge:
            raise validation_error({"file": [
                f"{name!r} is larger than {per_file:,} bytes."]}) from None
        total += blob.size
        if total > total_limit:
            raise validation_error({"file": [
                f"The files together are larger than {total_limit:,} bytes."]})
        uploads.append(Upload(name, blob.digest, blob.size))
    return uploads


def remove(task_id: str) -> None:
    """Delete a task's stored uploads (idempotent)."""
    shutil.rmtree(blob_root() / namespace(task_id), ignore_errors=True)
