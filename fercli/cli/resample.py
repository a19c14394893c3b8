"""`fercli resample` (being written)."""
