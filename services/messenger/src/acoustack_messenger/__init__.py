"""acoustack messenger service: the outbox over MQTT and HTTP, heartbeats and summaries."""
