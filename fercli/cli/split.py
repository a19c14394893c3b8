"""`fercli split` (being written)."""
