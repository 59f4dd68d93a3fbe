"""The access audit trail: who read or changed which case, hash-chained per organisation."""
