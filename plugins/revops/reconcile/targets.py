"""Sales targets (quota) from the targets file: one row per rep and month, in USD.

The file is configuration a sales-ops team exports (`include/config/targets.csv`, or the
deployment's REVOPS_CONFIG_DIR). Each build copies it to `staging.targets`, and its hash is
part of the build id, so a changed target gives a new build, as new data would.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from revops.configuration import ConfigError
from revops.settings import config_dir

COLUMNS = ("owner_id", "rep", "month", "target")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def targets_path() -> Path:
    return config_dir() / "targets.csv"


def load_targets(path: Path | None = None) -> pd.DataFrame:
    """owner_id, month (its first day), target. No file: no targets. A malformed row stops
    the build with its file and line: a wrong quota must not reach an executive quietly."""
    path = path or targets_path()
    if not path.exists():
        return pd.DataFrame({"owner_id": [], "month": [], "target": []})
    lines = enumerate(path.read_text().splitlines(), 1)
    numbered = [(n, line) for n, line in lines if not line.startswith("#")]
    if not numbered:
        raise ConfigError(f"{path}: no header row; expected {', '.join(COLUMNS)}")
    (_, header), *rows = numbered
    if tuple(next(csv.reader([header]))) != COLUMNS:
        raise ConfigError(f"{path}:{numbered[0][0]}: header must be {','.join(COLUMNS)}")
    parsed, seen = [], set()
    for number, line in rows:
        if line.strip():
            parsed.append(_row(f"{path}:{number}", next(csv.reader([line])), seen))
    return pd.DataFrame(parsed, columns=["owner_id", "month", "target"])


def _row(where: str, values: list[str], seen: set) -> tuple:
    if len(values) != len(COLUMNS):
        raise ConfigError(f"{where}: expected {len(COLUMNS)} values, got {len(values)}")
    owner_id, _rep, month, target = (v.strip() for v in values)
    if not owner_id:
        raise ConfigError(f"{where}: owner_id is empty")
    if not _MONTH.fullmatch(month):
        raise ConfigError(f"{where}: month {month!r} is not YYYY-MM")
    try:
        amount = float(target)
    except ValueError:
        raise ConfigError(f"{where}: target {target!r} is not a number") from None
    if not amount >= 0:
        raise ConfigError(f"{where}: target {target!r} is negative")
    if (owner_id, month) in seen:
        raise ConfigError(f"{where}: a second target for {owner_id} in {month}")
    seen.add((owner_id, month))
    return owner_id, pd.Timestamp(f"{month}-01").date(), amount
