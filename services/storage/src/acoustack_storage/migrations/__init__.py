"""Numbered migrations: NNNN_name.sql (or .py, defining migrate(conn)), applied in order, each once."""
