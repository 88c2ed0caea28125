# Fixtures shared by every test in the repository: real Postgres and RabbitMQ (acoustack.testing).
pytest_plugins = ["acoustack.testing.fixtures"]
