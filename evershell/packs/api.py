"""``/v1/packs``."""

from evershell.core.api import Blueprint

blp = Blueprint("packs", __name__, url_prefix="/v1/packs", description="Content packs.")
