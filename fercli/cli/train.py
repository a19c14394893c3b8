"""`fercli train` (being written)."""
