"""acoustack dashboard: the device's own web pages, over storage's and the scheduler's gRPC."""
