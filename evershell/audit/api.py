"""``/v1/audit``."""

from evershell.core.api import Blueprint

blp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="The audit log.")
