"""Report builder and templates."""
