"""What an HR system syncs against: external references on cases and the case change feed."""
