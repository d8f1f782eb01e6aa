"""Checkpoint and dead-letter repository contracts on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventsource.repositories.checkpoint import InMemoryCheckpointRepository
from eventsource.repositories.dlq import InMemoryDLQRepository
from eventsource.testing.contract.checkpoint import CheckpointRepositoryContract
from eventsource.testing.contract.dlq import DLQRepositoryContract

BACKENDS = ["memory"]


class TestCheckpointRepositories(CheckpointRepositoryContract):
    @pytest.fixture(params=BACKENDS)
    async def checkpoint_repo(self, request: pytest.FixtureRequest) -> AsyncIterator[object]:
        yield InMemoryCheckpointRepository()


class TestDLQRepositories(DLQRepositoryContract):
    @pytest.fixture(params=BACKENDS)
    async def dlq_repo(self, request: pytest.FixtureRequest) -> AsyncIterator[object]:
        yield InMemoryDLQRepository()
