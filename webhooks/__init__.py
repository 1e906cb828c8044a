"""hookbuild's receiving side: verify forge webhooks and turn them into push events."""
