"""The people projection: who works where, for whom, since when (from gateway events)."""
