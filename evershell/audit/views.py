"""Console pages of the audit log."""

from flask import Blueprint

blp = Blueprint("audit_views", __name__, url_prefix="/audit")
