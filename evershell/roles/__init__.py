"""Agent roles: model + system prompt + capabilities (caps.yaml) + packs, versioned."""
