"""Interim measures while a case runs, and corrective actions once it is decided."""
