"""The CSV source: Salesforce-report and HubSpot-export shaped files, for spreadsheet teams.

Each configured file is a full snapshot of one object. Headers are renamed to API field
names with the mapping in `include/config/csv_sources.yaml`; values stay the strings the
file holds (an empty cell becomes null), so parsing and its failures belong to reconcile.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from revops.configuration import ConfigError, read_config
from revops.extract.landing import BatchSpec

log = logging.getLogger(__name__)

# Key under which a row keeps cells that had no header; reconcile quarantines such rows.
UNEXPECTED_CELLS = "_unexpected_cells"
# Key listing the fields whose bytes were not text in the file's encoding; quarantined too.
UNDECODABLE_FIELDS = "_undecodable_fields"
# Descriptions and notes can be long; the csv module's default limit (128 KiB) would stop the
# whole file at the first long cell.
MAX_FIELD_CHARS = 64 * 1024 * 1024
# Optional file beside the exports: {"exported_at": "<ISO UTC>"}, the moment the data is
# complete to. Without it, a file's modification time stands in.
EXPORT_MANIFEST = "export.json"


def csv_batches(export_dir: Path, config: dict | None = None) -> Iterator[tuple[BatchSpec, list[dict]]]:
    """One batch per configured export file found in `export_dir`.

    `config` has the shape of `include/config/csv_sources.yaml` (the default); a public
    dataset brings its own (`include/config/datasets/`). Exports are full snapshots, so a
    batch's window is (none, the moment it was exported).
    """
    config = config if config is not None else read_config("csv_sources")
    exported_at = _exported_at(export_dir)
    for source, objects in config.items():
        for object_name, spec in objects.items():
            path = export_dir / spec["file"]
            if not path.exists():
                log.warning("%s.%s: no export at %s, skipped", source, object_name, path)
                continue
            batch = BatchSpec(
                source=source,
                object=object_name,
                extract_mode="full",
                window_start=None,
                window_end=exported_at or _modified_at(path),
                origin=f"csv:{spec['file']}",
                id_field=spec["id"],
            )
            yield (
                batch,
                read_export(
                    path,
                    spec.get("columns", {}),
                    spec.get("keep_other_columns", False),
                    spec.get("encoding", "utf-8-sig"),
                ),
            )


def _exported_at(export_dir: Path) -> datetime | None:
    manifest = export_dir / EXPORT_MANIFEST
    if not manifest.exists():
        return None
    stamp = datetime.fromisoformat(json.loads(manifest.read_text())["exported_at"])
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def _modified_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def read_export(
    path: Path, columns: dict[str, str], keep_other_columns: bool = False, encoding: str = "utf-8-sig"
) -> list[dict]:
    """Rows of a CSV export as dicts keyed by API field name ('' becomes None).

    A header the mapping does not know is an error unless `keep_other_columns` keeps it
    under its own name. A column with no header at all (a trailing comma on every line)
    is dropped while its cells are empty; a value in it marks the row for quarantine.
    `utf-8-sig` drops a byte-order mark that spreadsheet tools like to add. Bytes that are
    not text in `encoding` (a Windows-1252 export read as UTF-8) are kept, escaped, and mark
    the row for quarantine rather than stopping the file or being guessed at.
    """
    csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open(newline="", encoding=encoding, errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        named = [h for h in header if h.strip()]
        unknown = [h for h in named if columns and h not in columns and h not in columns.values()]
        if unknown and not keep_other_columns:
            raise ConfigError(f"{path}: columns not in the mapping: {', '.join(unknown)}")
        names = {h: columns.get(h, h) for h in named}
        return [_record(row, names) for row in reader]


def _record(row: dict, names: dict[str, str]) -> dict:
    """A row keyed by API name; cells beyond the header, or under an empty header, are kept
    for quarantine, never dropped."""
    record = {names[k]: (v if v != "" else None) for k, v in row.items() if k in names}
    stray = [v for k, v in row.items() if k is not None and k not in names and v] + (row.get(None) or [])
    if stray:
        record[UNEXPECTED_CELLS] = stray
    undecodable = [name for name, value in record.items() if isinstance(value, str) and _undecodable(value)]
    for name in undecodable:
        record[name] = _shown_as_escapes(record[name])
    if undecodable:
        record[UNDECODABLE_FIELDS] = undecodable
    return record


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # how surrogateescape keeps an undecodable byte


def _undecodable(text: str) -> bool:
    """Whether `text` holds bytes the decoder could not read."""
    return _ESCAPED_BYTE.search(text) is not None


def _shown_as_escapes(text: str) -> str:
    """The undecodable bytes as `\\xe9` text: storable, and readable in the quarantine."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
