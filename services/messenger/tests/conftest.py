"""The messenger's own tests: a store client that gives up quickly (the servers they talk to are
``acoustack_messenger.testing``'s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acoustack.clients import RetryPolicy, StoreClient


@pytest.fixture
def store(storage_target: str) -> Iterator[StoreClient]:
    with StoreClient(storage_target, retry=RetryPolicy(budget_s=2.0)) as client:
        yield client
