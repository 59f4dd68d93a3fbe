"""The directory projection: the organisations and people notify needs to pick recipients."""
