"""Platform glue shared by the services: settings, logging, Kafka consumer wiring, dead letters."""
