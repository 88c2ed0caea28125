# Fixtures shared by every test in the repository: real Postgres and RabbitMQ (acoustack.testing),
# and the services' own: storage's (a database with its schema, a running store), the
# messenger's (MQTT brokers, a subscriber, an HTTP sink), the hub's (its database, its broker,
# replicas as processes).
pytest_plugins = [
    "acoustack.testing.fixtures",
    "acoustack_storage.testing",
    "acoustack_messenger.testing",
    "acoustack_hub.testing",
]
