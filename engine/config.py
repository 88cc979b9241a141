"""Settings, read in layers (DESIGN.md): LSP initializationOptions > `workspace/configuration` section `atlas` >
`[tool.atlas]` in the workspace's pyproject.toml > `ATLAS_*` environment variables > the user config file > defaults.

Each setting is declared once, as a field of `Settings` with its default, description and accepted range; the
parser, the error messages and the published JSON schema all come from those declarations. An invalid value is
reported by name, source and accepted range, and the default is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "ATLAS_"


def setting(default: Any, description: str, *, minimum: float | None = None, maximum: float | None = None,
            choices: Iterable[str] | None = None, nullable: bool = False, length: int | None = None) -> Any:
    """Declare one setting: its default, what it means, and what values it accepts."""
    meta = {"description": description, "minimum": minimum, "maximum": maximum,
            "choices": tuple(choices) if choices else None, "nullable": nullable, "length": length}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # --- model runtime ---
    model: str = setting("qwen2.5-coder-0.5b", "Model: a profile name or a path to a GGUF file.")
    draft_model: str | None = setting(None, "Draft model for speculative decoding: a profile name, a GGUF path or "
                                      "'none'. Unset: the model profile's natural draft when the model runs on a GPU, "
                                      "none on CPU cores.", nullable=True)
    # 8192: HARD decodes k=20 sequences in one shared context, which needs about 20 x the token budget.
    n_ctx: int = setting(8192, "Context length in tokens (shared by all candidates of a batch).", minimum=512,
                         maximum=131072)
    n_threads: int = setting(0, "CPU threads for llama.cpp (0 = one per physical core).", minimum=0, maximum=512)
    n_gpu_layers: int = setting(0, "Layers offloaded to the GPU (-1 = all, 0 = CPU only).", minimum=-1,
                                maximum=100000)
    seed: int = setting(0, "Base random seed for sampling.", minimum=0, maximum=2**31 - 1)
    log_level: str = setting("info", "How much the server logs.", choices=("error", "warning", "info", "debug"))

    # --- the Lens: learned verifier over the model's own hidden states (lens/) ---
    lens_enabled: bool = setting(True, "Rank candidates with the Lens once one is trained for the model; off = "
                                       "rank by mean token log-probability (the baseline).")
    lens_retrain_every: int = setting(50, "Retrain the Lens in the background after this many new labelled "
                                          "candidates.", minimum=1, maximum=1_000_000)
    lens_min_per_class: int = setting(5, "Passing and failing candidates each needed before the first training.",
                                      minimum=1, maximum=100_000)
    lens_train_threads: int = setting(1, "CPU threads a background Lens training may use (it also runs at low "
                                         "priority, so generation comes first).", minimum=1, maximum=512)

    # --- solve pipeline: router, tiers, escalation, pattern cache (engine/router.py, pipeline.py, cache.py) ---
    router_weights: tuple[float, float, float, float] = setting(
        (0.30, 0.25, 0.20, 0.25), "Weights of the router's difficulty signals: pattern-cache similarity, retrieval "
        "confidence of the context, task complexity, Lens difficulty. Missing signals drop out; the rest renormalise.",
        minimum=0.0, maximum=1.0, length=4)
    router_cost_weight: float = setting(
        0.4, "The router's price of compute: tier utility = P(success) - this x (k / k of HARD). 0.4 means the HARD "
        "tier's whole compute must buy 0.4 more success probability than it would cost.", minimum=0.0, maximum=10.0)
    router_prior_strength: float = setting(
        4.0, "How many outcomes the router's prior is worth, per difficulty bin and tier.", minimum=0.1,
        maximum=1000.0)
    router_bins: int = setting(5, "Difficulty bins of the router's posteriors.", minimum=1, maximum=50)
    tier_k: tuple[int, int, int] = setting((1, 5, 20), "Candidates per tier: FAST, STANDARD, HARD.", minimum=1,
                                           maximum=128, length=3)
    tier_temperature: tuple[float, float, float] = setting(
        (0.7, 0.8, 1.0), "Sampling temperature per tier (FAST, STANDARD, HARD); the first candidate of each solve is "
        "greedy whatever the tier.", minimum=0.0, maximum=2.0, length=3)
    tier_max_tokens: tuple[int, int, int] = setting(
        (512, 512, 768), "Token budget of each candidate, per tier (FAST, STANDARD, HARD).", minimum=16,
        maximum=32768, length=3)
    top_p: float = setting(0.95, "Nucleus sampling threshold for sampled candidates.", minimum=0.01, maximum=1.0)
    max_escalations: int = setting(2, "How many times one solve may move up a tier when no candidate passed.",
                                   minimum=0, maximum=2)
    escalation_token_budget: int = setting(
        20000, "Most tokens one solve may generate over all its tiers; a tier whose budget would exceed what is left "
        "is not tried.", minimum=0, maximum=10_000_000)
    repair_k: int = setting(
        4, "Candidates written from a repair prompt (the task, and how the failing candidate that passed the most "
        "tests failed) once every tier has failed the tests, on top of escalation_token_budget; 0 turns repair off.",
        minimum=0, maximum=32)
    agreement_enabled: bool = setting(
        True, "When several different candidates pass the tests, choose among them by how they answer probe inputs "
        "(variations of the tests' inputs, and model-written tests) instead of taking the best-ranked one.")
    agreement_tests: int = setting(
        10, "Test cases the model writes from the specification to tell passing candidates apart (one extra "
        "generation, only when several different candidates pass); 0 = compare on varied test inputs only.",
        minimum=0, maximum=20)
    min_support: float = setting(
        0.0, "A passing answer is committed when more than this share of the solve's samples pass the tests and "
        "answer probe inputs as it does; with less support (weak tests let a wrong program through; the samples "
        "disagree) the next tier is tried, within max_escalations and escalation_token_budget, and the choice is "
        "made again among all passing candidates. 0 (the default) commits the first answer that passes: measured on "
        "HumanEval with the 1.5B, 0.5 took 2.2x the time and its escalations gained no hidden-test pass. Needs "
        "agreement_enabled.", minimum=0.0, maximum=1.0)
    test_timeout_s: float = setting(
        6.0, "Wall-clock seconds one test run of a candidate may take in the sandbox (its CPU-time limit follows); "
        "raise it for slow test suites or a busy machine.", minimum=0.5, maximum=600.0)
    cache_enabled: bool = setting(True, "Use the pattern cache: reuse verified solutions, hint from similar tasks.")
    cache_strength_hours: float = setting(
        72.0, "Strength S of a new pattern-cache entry in hours (retention R = exp(-elapsed / S)).", minimum=0.001,
        maximum=1e6)
    cache_strength_growth: float = setting(2.5, "Factor by which each successful reuse multiplies an entry's "
                                                "strength.", minimum=1.0, maximum=100.0)
    cache_promote_after: int = setting(3, "Successful reuses that promote a pattern-cache entry to long-term (never "
                                          "pruned).", minimum=1, maximum=1000)
    cache_prune_below: float = setting(0.05, "Short-term pattern-cache entries whose retention falls below this are "
                                             "pruned.", minimum=0.0, maximum=1.0)
    cache_lexical_weight: float = setting(0.5, "Weight of BM25 against embedding cosine in pattern-cache retrieval.",
                                          minimum=0.0, maximum=1.0)
    cache_hint_similarity: float = setting(
        0.5, "Similar solved tasks scoring at least this give the prompt a strategy hint (lower, and a small model "
        "starts copying what a merely related task did).", minimum=0.0, maximum=1.0)
    cache_max_hints: int = setting(2, "Most strategy hints added to one prompt.", minimum=0, maximum=10)

    # --- language server (atlas_ls) ---
    apply_unverified: str = setting(
        "no-tests", "When to apply a candidate no test has confirmed: 'never'; 'no-tests' (only when the function has "
        "no tests or doctests to run); 'always' (also when every candidate failed its tests).",
        choices=("never", "no-tests", "always"))
    preload_model: bool = setting(True, "Load the model in the background when the server starts, so the first "
                                        "solve does not wait for it.")
    watch_tests: bool = setting(True, "Watch the workspace's test files (watchdog) to keep the test index fresh.")
    watch_debounce_ms: int = setting(300, "Quiet time after a file change before the test index is refreshed.",
                                     minimum=0, maximum=10000)
    max_alternatives: int = setting(5, "Other candidates offered as code actions after a solve.", minimum=0,
                                    maximum=50)


@dataclass(frozen=True)
class ConfigLayer:
    """One source of settings: a name for messages (e.g. "pyproject.toml [tool.atlas]") and its raw values."""

    source: str
    values: Mapping[str, Any]


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Settings)}


def _snake(key: str) -> str:
    """Accept `nCtx` (VS Code style) as well as `n_ctx`."""
    out = []
    for ch in key:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out).replace("-", "_")


def _accepted(f: dataclasses.Field) -> str:
    meta = f.metadata
    kind = _base_type(f)
    if meta["choices"]:
        text = "one of " + ", ".join(repr(c) for c in meta["choices"])
    elif kind is bool:
        text = "true or false"
    elif kind in (int, float):
        noun = "an integer" if kind is int else "a number"
        if meta["length"]:
            noun = f"a list of {meta['length']} numbers"
        lo, hi = meta["minimum"], meta["maximum"]
        text = noun + (f" from {lo} to {hi}" if lo is not None and hi is not None else "")
    else:
        text = "a string"
    return text + (" or null" if meta["nullable"] else "")


def _base_type(f: dataclasses.Field) -> type:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(default, tuple):
        return type(default[0]) if default else float
    if default is None:
        return str
    return type(default)


def _coerce_scalar(kind: type, value: Any, from_text: bool) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        raise ValueError
    if kind is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_text:
            return int(str(value).strip())
        raise ValueError
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return float(value)
        if from_text:
            return float(str(value).strip())
        raise ValueError
    if isinstance(value, str):
        return value
    raise ValueError


def _coerce(f: dataclasses.Field, value: Any, from_text: bool) -> Any:
    """Turn a raw value into the field's type, or raise ValueError when it is not acceptable."""
    meta = f.metadata
    if value is None or (from_text and meta["nullable"] and str(value).strip().lower() in ("", "none", "null")):
        if meta["nullable"]:
            return None
        raise ValueError
    kind = _base_type(f)
    if meta["length"]:
        items = json.loads(value) if from_text and isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or len(items) != meta["length"]:
            raise ValueError
        coerced = tuple(_coerce_scalar(kind, item, False) for item in items)
        checks = coerced
    else:
        coerced = _coerce_scalar(kind, value, from_text)
        checks = (coerced,)
    for item in checks:
        if meta["choices"] and item not in meta["choices"]:
            raise ValueError
        if meta["minimum"] is not None and item < meta["minimum"]:
            raise ValueError
        if meta["maximum"] is not None and item > meta["maximum"]:
            raise ValueError
    return coerced


def resolve(layers: Iterable[ConfigLayer]) -> tuple[Settings, list[str]]:
    """Merge layers, highest precedence first. Returns the settings and one message per problem found."""
    fields = _fields()
    chosen: dict[str, Any] = {}
    problems: list[str] = []
    for layer in layers:
        from_text = layer.source.startswith("environment")
        for raw_key, value in layer.values.items():
            key = _snake(raw_key)
            f = fields.get(key)
            if f is None:
                problems.append(f"unknown setting '{raw_key}' in {layer.source}; known settings: "
                                + ", ".join(sorted(fields)))
                continue
            if key in chosen:
                continue  # a higher layer already set it
            try:
                chosen[key] = _coerce(f, value, from_text)
            except (ValueError, TypeError, json.JSONDecodeError):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                problems.append(f"invalid value {value!r} for setting '{key}' in {layer.source}: expected "
                                f"{_accepted(f)}; using the default {default!r}")
                chosen[key] = default
    return Settings(**chosen), problems


def environment_layer(environ: Mapping[str, str] | None = None) -> ConfigLayer:
    """`ATLAS_<NAME>` for each setting; other ATLAS_* variables (such as ATLAS_DATA_DIR) are not settings."""
    environ = os.environ if environ is None else environ
    names = _fields()
    values = {}
    for name in names:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = environ[env_name]
    return ConfigLayer("environment (ATLAS_*)", values)


def _read_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def pyproject_layer(workspace: Path | None) -> tuple[ConfigLayer | None, list[str]]:
    """`[tool.atlas]` of the workspace's pyproject.toml, if there is one."""
    if workspace is None:
        return None, []
    path = Path(workspace) / "pyproject.toml"
    if not path.is_file():
        return None, []
    try:
        table = _read_toml(path).get("tool", {}).get("atlas", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return None, [f"could not read {path}: {exc}; its [tool.atlas] settings are ignored"]
    if not isinstance(table, dict):
        return None, [f"[tool.atlas] in {path} is not a table; ignored"]
    return ConfigLayer(f"{path} [tool.atlas]", table), []


def user_file_layer(path: Path | None) -> tuple[ConfigLayer | None, list[str]]:
    """The user config file (TOML, top-level keys)."""
    if path is None or not Path(path).is_file():
        return None, []
    try:
        return ConfigLayer(f"user config file {path}", _read_toml(Path(path))), []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return None, [f"could not read the user config file {path}: {exc}; it is ignored"]


def load(workspace: Path | None = None, *, overrides: Iterable[ConfigLayer] = (),
         user_file: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """Settings for a workspace. `overrides` are the layers above the files (LSP options, command-line flags),
    highest first. The user file defaults to the one under the per-user config directory."""
    if user_file is None:
        from engine.paths import user_config_path

        user_file = user_config_path()
    problems: list[str] = []
    layers = list(overrides)
    project, found = pyproject_layer(workspace)
    problems += found
    if project:
        layers.append(project)
    layers.append(environment_layer(environ))
    user, found = user_file_layer(user_file)
    problems += found
    if user:
        layers.append(user)
    settings, found = resolve(layers)
    return settings, problems + found


def json_schema() -> dict[str, Any]:
    """The settings as a JSON schema: the VS Code extension's `contributes.configuration` is generated from it."""
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        kind = _base_type(f)
        default = f.default if f.default is not dataclasses.MISSING else list(f.default_factory())
        json_type = {bool: "boolean", int: "integer", float: "number"}.get(kind, "string")
        spec: dict[str, Any] = {"description": meta["description"], "default": default}
        if meta["length"]:
            spec.update(type="array", items={"type": json_type}, minItems=meta["length"], maxItems=meta["length"])
        else:
            spec["type"] = [json_type, "null"] if meta["nullable"] else json_type
            if meta["choices"]:
                spec["enum"] = list(meta["choices"])
            if meta["minimum"] is not None:
                spec["minimum"] = meta["minimum"]
            if meta["maximum"] is not None:
                spec["maximum"] = meta["maximum"]
        properties[f"atlas.{f.name}"] = spec
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "atlas-ls settings", "type": "object",
            "properties": properties}
