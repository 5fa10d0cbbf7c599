"""A real SMTP server on 127.0.0.1 that keeps every message it receives as an .eml file.

It speaks SMTP (aiosmtpd), so the product's e-mail path runs unchanged against it: the
demo, `make airflow` and the tests all use it in place of a company relay.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from revops.devtools.ports import free_port


@dataclass
class _SaveToDirectory:
    directory: Path
    received: list[Path] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(list(self.directory.glob('*.eml'))) + 1:04d}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        self.received.append(path)
        return "250 Message accepted for delivery"


@dataclass
class MailSink:
    host: str
    port: int
    directory: Path
    handler: _SaveToDirectory

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in self.handler.received
        ]

    def airflow_connection(self, mail_from: str = "scorecards@revops-demo.com") -> str:
        """The connection as an AIRFLOW_CONN_* JSON value (plain SMTP, no TLS)."""
        import json

        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "extra": {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "from_email": mail_from,
                    "retry_limit": 1,
                    "timeout": 10,
                },
            }
        )


@contextmanager
def mail_sink(directory: Path, port: int = 0) -> Iterator[MailSink]:
    """Run the sink for the duration of the block; port 0 picks a free port."""
    handler = _SaveToDirectory(directory)
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield MailSink("127.0.0.1", controller.port, directory, handler)
    finally:
        controller.stop()
