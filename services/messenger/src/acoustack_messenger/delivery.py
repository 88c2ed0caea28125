"""When a message that was not delivered is tried again, and when it is given up on.

A try is one message asked of every messenger once. When none of its responses is a success:

- every response a refusal for good (FAILED: HTTP 3xx and 4xx other than 408 and 429, an MQTT
  PUBACK refusal): a refusal, counted by the store; at ``messaging.dead_after_refusals`` the
  message is a dead letter;
- otherwise a temporary failure (ERROR, TIMEOUT: unreachable, no answer, HTTP 5xx, 408, 429).

Either way the message waits before its next try: ``retry_backoff_s`` doubled with each failed
try in a row, at most ``retry_backoff_max_s``, with jitter (between half and all of it, so the
messages of one outage, or many devices after a server's restart, do not come back together),
and never less than the receiver's Retry-After. Waiting per message is what lets the next run
take the newer messages behind a poison one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from acoustack import schema
from acoustack.program_config import MessagingConfig

# A Retry-After beyond this is a server's bug, not a wish to honour (the store's own bound).
RETRY_AFTER_LIMIT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Backoff:
    first_s: float = 60.0
    max_s: float = 3600.0
    dead_after_refusals: int = 3

    @classmethod
    def of(cls, config: MessagingConfig) -> Backoff:
        return cls(config.retry_backoff_s, config.retry_backoff_max_s, config.dead_after_refusals)

    def wait_s(self, failed_tries: int, rng: random.Random | None = None) -> float:
        """The wait after a message's ``failed_tries + 1``-th failed try in a row."""
        ceiling = min(self.max_s, self.first_s * 2 ** min(failed_tries, 40))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Verdict:
    """A try without a success: a refusal for good or not, and the wait before the next."""

    refused: bool
    retry_in_s: float
    dead: bool  # this refusal makes the message a dead letter


def judge(
    message: schema.Message,
    responses: Sequence[schema.Response],
    backoff: Backoff,
    rng: random.Random | None = None,
) -> Verdict | None:
    """None when a response was a success (the message is sent)."""
    if any(r.status is schema.ResponseStatus.SUCCESS for r in responses):
        return None
    refused = bool(responses) and all(r.status is schema.ResponseStatus.FAILED for r in responses)
    wait = backoff.wait_s(message.failed_tries, rng)
    asked = [r.retry_after_s for r in responses if r.retry_after_s is not None]
    if asked:
        wait = max(wait, min(max(asked), RETRY_AFTER_LIMIT_S))
    dead = refused and message.refusals + 1 >= backoff.dead_after_refusals
    return Verdict(refused, wait, dead)
