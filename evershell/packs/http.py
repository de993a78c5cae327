"""HTTP in and out for packs, shared by the API and the console: reading an upload's
parts, and answering with a file."""

from __future__ import annotations

import mimetypes
from typing import BinaryIO

from flask import Request, Response, send_file
from werkzeug.datastructures import FileStorage

from evershell.core.errors import validation_error
from evershell.packs.services import Parts

FILE_FIELDS = ("files", "archive")


def _nothing_chosen(part: FileStorage) -> bool:
    """A browser sends an empty, nameless part for a file input left empty."""
    if part.filename:
        return False
    stream = part.stream
    stream.seek(0, 2)
    empty = stream.tell() == 0
    stream.seek(0)
    return empty


def read_upload(request: Request) -> tuple[Parts, BinaryIO | None]:
    """(file parts as (filename, stream), the archive part's stream or None)."""
    if request.mimetype != "multipart/form-data":
        raise validation_error({"files": [
            "Send multipart/form-data with repeated `files` parts or one `archive` part."]})
    textual = [name for name in FILE_FIELDS if name in request.form]
    if textual:
        # A part without a filename arrives as a text field: its path would be lost.
        raise validation_error({name: ["Send it as a file part, with a filename."]
                                for name in textual})
    unknown = sorted(set(request.files) - set(FILE_FIELDS))
    if unknown:
        raise validation_error({name: ["Unknown file part; send `files` or `archive`."]
                                for name in unknown})
    files = [(part.filename, part.stream) for part in request.files.getlist("files")
             if not _nothing_chosen(part)]
    archives = [part for part in request.files.getlist("archive") if not _nothing_chosen(part)]
    if len(archives) > 1:
        raise validation_error({"archive": ["Send one archive."]})
    return files, archives[0].stream if archives else None


def file_response(request: Request, stream: BinaryIO, filename: str, size: int,
                  digest: str) -> Response:
    """The file as a download: never rendered by the browser, cacheable by digest."""
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = send_file(stream, mimetype=mimetype, as_attachment=True,
                         download_name=filename, conditional=False, etag=False,
                         max_age=None)
    response.content_length = size
    response.set_etag(digest)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Even if something did render it (an old browser, a proxy), it could not script us.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request, accept_ranges=True, complete_length=size)
