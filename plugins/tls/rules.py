"""TLS findings (placeholder while the diagnosis is written)."""
