"""Real-client tests (confluent-kafka, kafka-python, aiokafka, kcat) against a pyk serve process."""
