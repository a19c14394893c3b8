"""`fercli evaluate` (being written)."""
