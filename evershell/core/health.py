"""Liveness: ``GET /health`` answers without authentication."""

from flask import Blueprint, jsonify

blp = Blueprint("health", __name__)


@blp.get("/health")
def health():
    return jsonify(ok=True)
