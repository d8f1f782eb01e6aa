"""Projections: read models built from events."""

from eventsource.projections.decorators import get_handled_event_type, handles, is_event_handler

__all__ = ["get_handled_event_type", "handles", "is_event_handler"]
