"""`fercli merge` (being written)."""
