"""API keys: the automation credential (``sk_…``), stored only as a keyed hash."""
