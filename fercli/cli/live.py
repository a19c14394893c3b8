"""`fercli live` (being written)."""
