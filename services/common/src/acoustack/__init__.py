"""acoustack shared library: data schema, proto conversion, configuration, gRPC clients and helpers."""

__version__ = "0.1.0"
