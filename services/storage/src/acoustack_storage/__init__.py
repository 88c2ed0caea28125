"""acoustack storage service: Postgres behind the gRPC Store contract."""
