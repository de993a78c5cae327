"""``/v1/providers``."""

from evershell.core.api import Blueprint

blp = Blueprint("providers", __name__, url_prefix="/v1/providers", description="Model providers.")
