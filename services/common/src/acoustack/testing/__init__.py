"""Test support shared by every service: real Postgres and RabbitMQ, never mocks.

Enable with ``pytest_plugins = ["acoustack.testing.fixtures"]`` (the repository's conftest does).
"""
