"""Test support shipped with the package.

* `AggregateScenario`: given / when / then for aggregates, no store needed.
* `event_factory`, `build_stream`: valid events with consecutive versions.
* `eventsource.testing.pytest_plugin`: store, bus and repository fixtures for every backend.
* `eventsource.testing.contract`: the backend contract suites (these need pytest).
"""

from eventsource.testing.builders import build_stream, event_factory
from eventsource.testing.scenario import AggregateScenario, ScenarioAssertionError

__all__ = ["AggregateScenario", "ScenarioAssertionError", "build_stream", "event_factory"]
