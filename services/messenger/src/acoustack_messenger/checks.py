"""The messenger's self-check (`acoustack check`, and before a deployment starts): can each
messenger the program's `messaging` section configures reach its server now?"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from acoustack.errors import InvalidArgumentError, UnavailableError
from acoustack.program_config import MessagingConfig, read_section
from acoustack.self_check import CheckResult
from acoustack_messenger.messengers import DEFAULT_SECRETS_DIR, build_messengers


def self_check(
    program_config: Mapping[str, Any],
    device_id: Callable[[], str],
    secrets_dir: Path = DEFAULT_SECRETS_DIR,
) -> list[CheckResult]:
    """One verdict per messenger the program's messaging section configures: can it reach its
    server now? Nothing is sent."""
    try:
        messaging = read_section(program_config, "messaging", MessagingConfig)
        messengers = (
            build_messengers(messaging, device_id(), secrets_dir) if messaging is not None else []
        )
    except (InvalidArgumentError, UnavailableError) as exc:
        return [CheckResult("messaging", False, str(exc))]
    if not messengers:
        return [
            CheckResult("messaging", True, "no messenger configured: messages stay in the outbox")
        ]
    try:
        return [messenger.check() for messenger in messengers]
    finally:
        for messenger in messengers:
            messenger.close()
