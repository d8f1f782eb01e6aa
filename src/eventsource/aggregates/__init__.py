"""Aggregates and the repository that loads and saves them."""

from eventsource.aggregates.base import AggregateRoot, DeclarativeAggregate, handles
from eventsource.aggregates.repository import AggregateRepository

__all__ = ["AggregateRepository", "AggregateRoot", "DeclarativeAggregate", "handles"]
