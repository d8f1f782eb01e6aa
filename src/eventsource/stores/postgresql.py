"""`PostgreSQLEventStore` (placeholder until the durable-stores work lands)."""
