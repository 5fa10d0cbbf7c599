"""Row-level scopes: the slice of the data an audience may see (e.g. one region)."""

from __future__ import annotations

from dataclasses import dataclass

# The only columns a scope may filter on, and the SQL column each stands for.
SCOPE_COLUMNS = {"region": "region", "segment": "segment"}


@dataclass(frozen=True)
class Scope:
    """A row-level filter, or everything when `column` is None."""

    column: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.column is not None and self.column not in SCOPE_COLUMNS:
            raise ValueError(f"unknown scope column {self.column!r}; expected {sorted(SCOPE_COLUMNS)}")

    @classmethod
    def parse(cls, text: str) -> Scope:
        if text == "all":
            return cls()
        column, _, value = text.partition("=")
        return cls(column, value)

    @property
    def key(self) -> str:
        return "all" if self.column is None else f"{self.column}={self.value}"
