"""The warehouse: one SQLAlchemy engine, four layers (raw, staging, marts, audit)."""

from revops.warehouse.engine import get_engine
from revops.warehouse.load import append_frame, read_frame, replace_rows

__all__ = ["append_frame", "get_engine", "read_frame", "replace_rows"]
