"""Reading the product's YAML configuration under `include/config/` (and KPI definitions).

Every mapping read here remembers the line of each key, so a configuration mistake is
reported as `file:line: what is wrong`, and a key that is not known (a typo) is an error with
a suggestion rather than a setting that silently does nothing.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from revops.settings import PROJECT_ROOT, config_dir


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file (and line)."""


class LocatedDict(dict):
    """A YAML mapping that knows where it came from: its file, its line and each key's line."""

    path: Path | None = None
    line: int = 0
    key_lines: dict[str, int]


def location(spec: dict, key: str | None = None, default: str = "<config>") -> str:
    """`file:line` of `key` in `spec` (or of the mapping itself), for error messages; `default`
    for a mapping that came from elsewhere (a ledger entry, a test)."""
    if not isinstance(spec, LocatedDict) or spec.path is None:
        return default
    line = spec.key_lines.get(key, spec.line) if key is not None else spec.line
    try:
        shown = spec.path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        shown = spec.path
    return f"{shown}:{line}"


class _LocatingLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when present
    path: Path | None = None

    def construct_mapping(self, node, deep=False):
        mapping = LocatedDict(super().construct_mapping(node, deep=deep))
        mapping.path = self.path
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {key.value: key.start_mark.line + 1 for key, _ in node.value}
        return mapping


_LocatingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LocatingLoader.construct_mapping
)


def read_config(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Load `<name>.yaml` from the configuration directory (include/config by default)."""
    return read_yaml((directory or config_dir()) / f"{name}.yaml")


def file_sha256(path: Path) -> str | None:
    """A configuration file's sha256, for the build id; None where the deployment has none."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def read_yaml(path: Path) -> dict[str, Any]:
    loader = _LocatingLoader(path.read_text(encoding="utf-8"))
    loader.path = path
    try:
        content = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        context = f" ({error.context})" if error.context else ""
        raise ConfigError(f"{path}:{mark.line + 1}: not valid YAML: {error.problem}{context}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    finally:
        loader.dispose()
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return content


def check_keys(spec: dict, allowed: Iterable[str], required: Iterable[str] = (), what: str = "") -> None:
    """Refuse unknown keys (naming the closest known one) and missing required keys."""
    allowed = set(allowed) | set(required)
    prefix = f"{what}: " if what else ""
    for key in spec:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {sorted(allowed)}"
            raise ConfigError(f"{location(spec, key)}: {prefix}unknown key {key!r}{hint}")
    missing = [key for key in required if key not in spec]
    if missing:
        raise ConfigError(f"{location(spec)}: {prefix}missing {', '.join(repr(k) for k in missing)}")
