"""Content packs: versioned, content-hashed file sets mounted read-only into workspaces."""
