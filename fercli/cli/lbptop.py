"""`fercli lbptop` (being written)."""
