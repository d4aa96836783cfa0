"""``spacetime.json``: the project file upstream's CLI reads (``crates/cli/src/spacetime_config.rs``).

Found in the current directory or the nearest one above it. The root object is a database target (its keys
are command options in kebab-case: ``database``, ``server``, ``module-path``, ...); ``children`` lists more
targets, each inheriting its parent's keys it does not set (a child that names one module source,
``module-path``/``bin-path``/``js-path``, inherits none of the others); ``dev`` (root only) takes ``run``, and
nothing else; ``generate`` lists a target's binding outputs. Files overlay it key by key, as upstream's do:
``spacetime.local.json``, then with an environment (``dev`` uses ``dev``) ``spacetime.ENV.json`` and
``spacetime.ENV.local.json``; ``children`` overlay index by index.

What this CLI does with each key is the business of the command that reads the targets (``publish``, ``dev``);
this file finds, merges and checks the files, and flattens the targets. Unlike upstream, the files are strict
JSON: JSON5's comments and trailing commas are refused, with the file's name and the parser's position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacetimedb.cli.errors import CliError

CONFIG_FILENAME = "spacetime.json"
MODULE_SOURCE_KEYS = ("module_path", "bin_path", "js_path")
DEV_KEYS = ("run",)
LOAD_FAILED = "Failed to load spacetime.json"


@dataclass(frozen=True)
class ConfigTarget:
    """One database target, its keys in snake_case (upstream normalizes ``module-path`` to ``module_path``) with
    what it inherited from its parents."""

    fields: dict[str, Any]
    generate: list[dict[str, Any]] | None = None

    @property
    def database(self) -> str | None:
        value = self.fields.get("database")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ProjectConfig:
    directory: Path  # where spacetime.json is: relative paths in the files are relative to it
    files: list[Path]
    targets: list[ConfigTarget]
    dev_run: str | None = None

    def path(self, value: Any, key: str) -> Path:
        """A path the config gives for ``key``, resolved against the config's directory."""
        if not isinstance(value, str):
            raise CliError(
                f"spacetime.json: `{kebab(key)}` must be a path (a string), got {json.dumps(value)}"
            )
        path = Path(value)
        return path if path.is_absolute() else self.directory / path


def kebab(key: str) -> str:
    return key.replace("_", "-")


def find_config_dir(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards that holds a spacetime.json."""
    for directory in (start, *start.parents):
        if (directory / CONFIG_FILENAME).is_file():
            return directory
    return None


def load_project_config(start: Path, env: str | None = None) -> ProjectConfig | None:
    """The project config found from ``start`` upwards (None when there is none), merged and checked; a file
    that does not parse, or a field upstream would refuse, is a CliError starting "Failed to load
    spacetime.json"."""
    directory = find_config_dir(start.resolve())
    if directory is None:
        return None
    names = [CONFIG_FILENAME, "spacetime.local.json"]
    if env is not None:
        names += [f"spacetime.{env}.json", f"spacetime.{env}.local.json"]
    merged: dict[str, Any] = {}
    files: list[Path] = []
    for name in names:
        path = directory / name
        if path.is_file():
            _overlay(merged, _read(path))
            files.append(path)
    dev_run = _dev_run(merged.get("dev"))
    targets = _targets(merged, None, "the root")
    return ProjectConfig(directory, files, targets, dev_run)


def _fail(cause: str) -> CliError:
    return CliError(
        f"{LOAD_FAILED}: {cause}",
        hint="fix the file, or pass --no-config to ignore it",
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _fail(
            f"{path} is not valid JSON: {exc} (comments and trailing commas are not accepted)"
        ) from None
    if not isinstance(value, dict):
        raise _fail(f"{path} must hold a JSON object")
    return value


def _overlay(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    """Upstream's overlay: each key replaces the base's, except ``children``, overlaid index by index (as many
    as both have)."""
    for key, value in overlay.items():
        base_children = base.get("children")
        if key == "children" and isinstance(base_children, list) and isinstance(value, list):
            for index, child in enumerate(value[: len(base_children)]):
                if isinstance(child, dict) and isinstance(base_children[index], dict):
                    _overlay(base_children[index], child)
                else:
                    base_children[index] = child
        else:
            base[key] = value


def _dev_run(dev: Any) -> str | None:
    """``dev`` takes ``run`` only (upstream's ``deny_unknown_fields``, and its message)."""
    if dev is None:
        return None
    if not isinstance(dev, dict):
        raise _fail(f"`dev` must be an object with `run`, got {json.dumps(dev)}")
    for key in dev:
        if key not in DEV_KEYS:
            raise _fail(f"unknown field `{key}`, expected `run`")
    run = dev.get("run")
    if run is not None and not isinstance(run, str):
        raise _fail(f"`dev.run` must be a command line (a string), got {json.dumps(run)}")
    return run


def _targets(node: dict[str, Any], parent: dict[str, Any] | None, where: str) -> list[ConfigTarget]:
    fields = {k.replace("-", "_"): v for k, v in node.items() if k not in ("dev", "generate", "children")}
    if parent is not None:
        names_source = any(key in fields for key in MODULE_SOURCE_KEYS)
        for key, value in parent.items():
            if key not in fields and not (names_source and key in MODULE_SOURCE_KEYS):
                fields[key] = value
    generate = node.get("generate")
    if generate is not None and not (
        isinstance(generate, list) and all(isinstance(entry, dict) for entry in generate)
    ):
        raise _fail(f"`generate` of {where} must be a list of objects")
    found = [ConfigTarget(fields, generate)]
    children = node.get("children", [])
    if not isinstance(children, list) or not all(isinstance(child, dict) for child in children):
        raise _fail(f"`children` of {where} must be a list of objects")
    for index, child in enumerate(children):
        if "dev" in child:
            raise _fail(f"`dev` is allowed at the root only, not in child {index} of {where}")
        found += _targets(child, fields, f"child {index} of {where}")
    return found


def check_keys(target: ConfigTarget, upstream_keys: tuple[str, ...], supported: tuple[str, ...]) -> None:
    """Refuse a key the command does not take: upstream's message for one upstream does not know either, ours
    for one upstream takes but this CLI has no use for."""
    for key in target.fields:
        if key not in upstream_keys:
            available = ", ".join(upstream_keys)
            raise CliError(
                f"Config key '{key}' is not supported in the config file. Available keys: {available}",
                hint="fix spacetime.json, or pass --no-config to ignore it",
            )
        if key not in supported:
            raise CliError(
                f"spacetime.json: `{kebab(key)}` is not supported by this CLI (it takes "
                f"{', '.join(kebab(k) for k in supported)})",
                hint="remove it from spacetime.json, or pass --no-config to ignore the file",
            )


def select_targets(
    config: ProjectConfig, database: str | None, *, fall_back_to_single: bool = True
) -> list[ConfigTarget]:
    """The targets a command runs on: all of them, or those whose database matches ``database`` (a glob, as
    upstream); a name that matches none uses the only target's settings when there is one (publish and dev,
    not generate)."""
    if database is None:
        return config.targets
    from fnmatch import fnmatchcase

    matched = [t for t in config.targets if t.database is not None and fnmatchcase(t.database, database)]
    if matched:
        return matched
    if fall_back_to_single and len(config.targets) == 1:
        return config.targets
    known = ", ".join(t.database for t in config.targets if t.database is not None)
    raise CliError(
        f"No database target matches '{database}'. Available databases: {known}",
        hint="pass --no-config to use the name without spacetime.json",
    )
