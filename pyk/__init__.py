"""pyk: a Kafka-protocol event streaming broker (Python orchestration, Cython hot paths)."""

__version__ = "0.1.0"
