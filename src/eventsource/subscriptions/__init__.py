"""Subscriptions: catch up from the store, then follow live events, with checkpoints.

Most modules' `__all__` is offered here whole; from `health` and `transactional` only the
classes named below.
"""

from eventsource.subscriptions import (
    config,
    coordination,
    dead_letters,
    error_handling,
    exceptions,
    filtering,
    flow_control,
    health,
    manager,
    metrics,
    rebuild,
    retry,
    shutdown,
    subscriber,
    subscription,
    transition,
)
from eventsource.subscriptions.config import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.coordination import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.dead_letters import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.error_handling import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.exceptions import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.filtering import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.flow_control import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.health import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.manager import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.metrics import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.rebuild import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.retry import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.shutdown import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.subscriber import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.subscription import *  # noqa: F403 - re-exported whole
from eventsource.subscriptions.transactional import TransactionalSubscriber
from eventsource.subscriptions.transition import *  # noqa: F403 - re-exported whole

__all__ = [  # noqa: PLE0604
    *config.__all__,
    *coordination.__all__,
    *dead_letters.__all__,
    *error_handling.__all__,
    *exceptions.__all__,
    *filtering.__all__,
    *flow_control.__all__,
    *health.__all__,
    *manager.__all__,
    *metrics.__all__,
    *rebuild.__all__,
    *retry.__all__,
    *shutdown.__all__,
    *subscriber.__all__,
    *subscription.__all__,
    *transition.__all__,
    "TransactionalSubscriber",
]
