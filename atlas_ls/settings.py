"""Configuration for the server: the LSP layers on top of `engine.config`'s files and environment.

Precedence (DESIGN.md): initializationOptions > `workspace/configuration` section `atlas` > `[tool.atlas]` in the
workspace's pyproject.toml > `ATLAS_*` > the user config file > defaults. Problems (unknown keys, values out of
range) go to the client's log every time and are shown to the user once each.

VS Code answers `workspace/configuration` with every key of the section, defaults included; a value equal to the
declared default is therefore taken as "not set there", so that pyproject.toml and the environment still count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lsprotocol import types

from atlas_ls.protocol import CONFIG_SECTION
from engine import config
from engine.config import ConfigLayer, Settings

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer

# Settings the server reads itself; changing the others means a new Solver (model, context, threads, ...).
SERVER_ONLY = frozenset({"apply_unverified", "preload_model", "watch_tests", "watch_debounce_ms",
                         "max_alternatives", "log_level"})


@dataclass(frozen=True)
class InitializationOptions:
    """`initializationOptions`: the settings, either at the top level or under "atlas"."""

    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> tuple[InitializationOptions, list[str]]:
        if raw is None:
            return cls(), []
        if not isinstance(raw, Mapping):
            return cls(), [f"initializationOptions should be an object of settings, got {type(raw).__name__}; "
                           "ignored"]
        nested = raw.get(CONFIG_SECTION)
        if isinstance(nested, Mapping):
            return cls(dict(nested)), []
        return cls(dict(raw)), []


def _defaults() -> dict[str, Any]:
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(Settings)}


def without_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is the declared default (see the module docstring)."""
    defaults = _defaults()
    out = {}
    for key, value in values.items():
        name = config._snake(key)
        default = defaults.get(name, dataclasses.MISSING)
        if isinstance(default, tuple) and isinstance(value, list):
            value_cmp: Any = tuple(value)
        else:
            value_cmp = value
        if default is dataclasses.MISSING or value_cmp != default:
            out[key] = value
    return out


def client_layers(init: InitializationOptions, workspace_config: Any) -> tuple[list[ConfigLayer], list[str]]:
    """The two LSP layers, highest first."""
    layers = [ConfigLayer("LSP initializationOptions", init.settings)]
    problems: list[str] = []
    if workspace_config is None:
        pass
    elif isinstance(workspace_config, Mapping):
        layers.append(ConfigLayer(f"workspace/configuration section '{CONFIG_SECTION}'",
                                  without_defaults(workspace_config)))
    else:
        problems.append(f"workspace/configuration section '{CONFIG_SECTION}' should be an object, got "
                        f"{type(workspace_config).__name__}; ignored")
    return layers, problems


def resolve_settings(workspace: Path | None, init: InitializationOptions, workspace_config: Any,
                     environ: Mapping[str, str] | None = None,
                     user_file: Path | None = None) -> tuple[Settings, list[str]]:
    layers, problems = client_layers(init, workspace_config)
    settings, found = config.load(workspace, overrides=layers, environ=environ, user_file=user_file)
    return settings, problems + found


def supports_configuration(ls: AtlasLanguageServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.configuration)


async def fetch_workspace_configuration(ls: AtlasLanguageServer) -> Any:
    """The client's `atlas` section, or None when it has no `workspace/configuration` (or fails to answer)."""
    if not supports_configuration(ls):
        return None
    try:
        answer = await ls.workspace_configuration_async(types.ConfigurationParams(
            items=[types.ConfigurationItem(section=CONFIG_SECTION)]))
    except Exception as exc:  # the client may not implement it after all
        ls.messenger.log(f"workspace/configuration failed: {exc}", "warning")
        return None
    return answer[0] if answer else None


async def reload(ls: AtlasLanguageServer) -> Settings:
    """Read every layer again, report problems, and apply the result to the server."""
    workspace_config = await fetch_workspace_configuration(ls)
    settings, problems = resolve_settings(ls.root_path(), ls.init_options, workspace_config)
    problems = ls.init_problems + problems
    for problem in problems:
        ls.messenger.show_once(f"ATLAS settings: {problem}. Fix it in your editor settings, pyproject.toml "
                               f"[tool.atlas], ATLAS_* or the user config file.", "warning", key=problem)
    ls.apply_settings(settings)
    return settings


def register(ls: AtlasLanguageServer) -> None:
    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: AtlasLanguageServer, params: types.DidChangeConfigurationParams):
        await reload(ls)
