"""The directory projection: organisations and people from the gateway's events."""
