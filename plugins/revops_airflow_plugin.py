"""The project's Airflow plugin: the audit listener (every task and DAG-run outcome goes into
the ledger) and the read-only run-history page for auditors, at /revops-audit/ in the API
server with an entry in the UI's navigation."""

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from revops.audit import listener
from revops.audit.web import create_app


class RevopsPlugin(AirflowPlugin):
    name = "revops"
    listeners: ClassVar[list] = [listener]
    fastapi_apps: ClassVar[list] = [
        {"app": create_app(), "url_prefix": "/revops-audit", "name": "Run history"}
    ]
    external_views: ClassVar[list] = [
        {
            "name": "Run history",
            "href": "revops-audit/",
            "destination": "nav",
            "category": "browse",
            "url_route": "run-history",
        }
    ]
