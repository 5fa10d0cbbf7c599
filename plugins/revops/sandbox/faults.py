"""Faults the sandbox injects on request, so tests can prove the connectors survive them.

A fault matches requests of one system whose path contains a fragment; it lets `skip`
matching requests through, then fires `times` times.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

ACTIONS = (
    "rate_limit",  # Salesforce 403 REQUEST_LIMIT_EXCEEDED / HubSpot 429 (retry_after seconds)
    "daily_quota",  # HubSpot 429 with the DAILY policy: nothing left today, do not retry
    "expire_session",  # every issued token becomes invalid: 401 INVALID_SESSION_ID / EXPIRED_AUTHENTICATION
    "server_error",  # 500
    "malformed_json",  # 200 with a truncated JSON body
    "drop_connection",  # close the socket without an answer
    "slow",  # answer after `delay` seconds
)


@dataclass
class Fault:
    system: str  # "salesforce" | "hubspot"
    action: str
    path_contains: str = ""
    skip: int = 0
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; expected one of {ACTIONS}")


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def next_fault(self, system: str, path: str) -> Fault | None:
        """The fault this request triggers, if any (counts the request either way)."""
        with self.lock:
            for fault in self.faults:
                if fault.system != system or fault.path_contains not in path:
                    continue
                fault.seen += 1
                if fault.seen > fault.skip and fault.fired < fault.times:
                    fault.fired += 1
                    return fault
        return None
