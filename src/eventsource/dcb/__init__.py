"""Dynamic consistency boundaries: tagged events, reads by query, conditional appends.

Instead of one aggregate's stream, a decision reads exactly the events it depends on (a
`Query` of event types and tags), gets a `ConsistencyToken` of what it saw, and appends its new
events under an `AppendCondition`: the append fails with `DCBConflictError`, writing nothing,
if any event matching the query was stored that the read had not seen. Backends:
`InMemoryDCBStore`, `SQLiteDCBStore` (`eventsource.dcb.sqlite`) and `PostgreSQLDCBStore`
(`eventsource.dcb.postgresql`), each over the matching event store. See docs/dcb.md.
"""

from eventsource.dcb.base import AppendJob, DCBReadResult, DCBStore, SequencedEvent, StreamCheck
from eventsource.dcb.decide import Projection, append_with_retry, decide
from eventsource.dcb.exceptions import (
    DCBConflictError,
    DCBError,
    ForeignTokenError,
    InvalidQueryError,
    InvalidTagError,
)
from eventsource.dcb.memory import InMemoryDCBStore
from eventsource.dcb.query import (
    AppendCondition,
    ConsistencyToken,
    Query,
    QueryItem,
    Tagged,
    tags_of,
)
from eventsource.dcb.tagging import TaggingEventStore

__all__ = [
    "AppendCondition",
    "AppendJob",
    "ConsistencyToken",
    "DCBConflictError",
    "DCBError",
    "DCBReadResult",
    "DCBStore",
    "ForeignTokenError",
    "InMemoryDCBStore",
    "InvalidQueryError",
    "InvalidTagError",
    "Projection",
    "Query",
    "QueryItem",
    "SequencedEvent",
    "StreamCheck",
    "Tagged",
    "TaggingEventStore",
    "append_with_retry",
    "decide",
    "tags_of",
]
