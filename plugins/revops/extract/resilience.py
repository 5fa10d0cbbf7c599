"""Retries with backoff, and the errors that end an extract early.

Every remote call goes through `call_with_retries`, with a classifier per vendor that says
whether an error is worth another try and how long to wait (a `Retry-After` wins over the
exponential backoff). What cannot be retried becomes an `ExtractStopped` with a reason that
ends up on the incomplete batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ExtractStopped(RuntimeError):  # noqa: N818 - it is a stop, not a programming error
    """The extract cannot finish now (quota reached, retries exhausted, bad response)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Retry:
    """A classifier's verdict: try again, after `after` seconds if the server said so."""

    reason: str
    after: float | None = None


def call_with_retries(
    call: Callable[[], T],
    classify: Callable[[Exception], Retry | None],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`; retry what `classify` says is transient; raise ExtractStopped at the end."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except ExtractStopped:
            raise
        except Exception as error:
            verdict = classify(error)
            if verdict is None:
                raise
            if attempt == policy.attempts:
                raise ExtractStopped(
                    f"{what}: gave up after {attempt} attempts ({verdict.reason})"
                ) from error
            delay = verdict.after if verdict.after is not None else policy.backoff(attempt)
            log.warning(
                "%s: %s; retry %d/%d in %.1fs", what, verdict.reason, attempt, policy.attempts - 1, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")
