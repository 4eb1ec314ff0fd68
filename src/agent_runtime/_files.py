"""Reading the runtime's own configuration files (templates, workflows, triggers, prices): YAML, TOML
or JSON, with the caller's typed error naming the file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from agent_runtime.errors import AgentRuntimeError

__all__ = ["CONFIG_SUFFIXES", "config_files", "read_config_file"]

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def read_config_file(path: Path, what: str, error: type[AgentRuntimeError]) -> Any:
    """The parsed content of ``path``; unreadable, unknown suffix or unparsable raise ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if path.suffix == ".json":
            return json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise error(f"cannot parse {what} file {path}: {exc}") from exc
    raise error(f"{what} file {path} must be {', '.join(CONFIG_SUFFIXES)}")


def config_files(path: Path, what: str, error: type[AgentRuntimeError]) -> list[Path]:
    """``path`` itself, or every configuration file in the folder ``path``, sorted."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES)
    if path.is_file():
        return [path]
    raise error(f"{what} path {path} does not exist")
