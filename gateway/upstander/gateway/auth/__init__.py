"""Authentication: password hashing, signing keys, token issuing and the OAuth token endpoint."""
