"""`fercli align` (being written)."""
