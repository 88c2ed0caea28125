# Fixtures shared by every test in the repository: real Postgres and RabbitMQ (acoustack.testing),
# and storage's own (a database with its schema, a running store).
pytest_plugins = ["acoustack.testing.fixtures", "acoustack_storage.testing"]
