"""The hub's numbered migrations (NNNN_name.sql), applied in order, each once (acoustack.migrations)."""
