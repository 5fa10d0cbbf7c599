"""Reading the product's YAML configuration under `include/config/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from revops.settings import CONFIG_DIR


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file."""


def read_config(name: str, directory: Path = CONFIG_DIR) -> dict[str, Any]:
    """Load `include/config/<name>.yaml` as a mapping."""
    return read_yaml(directory / f"{name}.yaml")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {error}") from error
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return content
