from pathlib import Path

import pytest

from engine import config
from engine.config import ConfigLayer


def test_higher_layer_wins():
    settings, problems = config.resolve([
        ConfigLayer("initializationOptions", {"n_ctx": 2048}),
        ConfigLayer("pyproject", {"n_ctx": 8192, "seed": 7}),
    ])
    assert problems == []
    assert settings.n_ctx == 2048
    assert settings.seed == 7


def test_invalid_value_is_named_with_range_and_default_used():
    settings, problems = config.resolve([ConfigLayer("initializationOptions", {"n_ctx": 10})])
    assert settings.n_ctx == config.Settings().n_ctx
    assert len(problems) == 1
    assert "'n_ctx'" in problems[0] and "from 512 to 131072" in problems[0] and "initializationOptions" in problems[0]


def test_invalid_choice_lists_accepted_values():
    settings, problems = config.resolve([ConfigLayer("workspace/configuration", {"logLevel": "loud"})])
    assert settings.log_level == "info"
    assert "'error', 'warning', 'info', 'debug'" in problems[0]


def test_unknown_key_reported():
    _, problems = config.resolve([ConfigLayer("user config file", {"modle": "x"})])
    assert "unknown setting 'modle'" in problems[0]


def test_environment_values_are_parsed_from_text():
    layer = config.environment_layer({"ATLAS_N_CTX": "1024", "ATLAS_DRAFT_MODEL": "none", "ATLAS_DATA_DIR": "/x"})
    settings, problems = config.resolve([layer])
    assert problems == []
    assert settings.n_ctx == 1024
    assert settings.draft_model is None


def test_full_precedence_chain(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.atlas]\nseed = 3\nn_threads = 2\n")
    user = tmp_path / "user.toml"
    user.write_text("seed = 9\nn_threads = 9\nn_gpu_layers = 5\nlog_level = 'debug'\n")
    settings, problems = config.load(
        tmp_path,
        overrides=[ConfigLayer("initializationOptions", {"seed": 1})],
        user_file=user,
        environ={"ATLAS_N_THREADS": "4", "ATLAS_N_GPU_LAYERS": "6"},
    )
    assert problems == []
    assert (settings.seed, settings.n_threads, settings.n_gpu_layers, settings.log_level) == (1, 2, 6, "debug")


def test_broken_pyproject_reported_not_fatal(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.atlas\n")
    settings, problems = config.load(tmp_path, user_file=tmp_path / "none.toml", environ={})
    assert settings == config.Settings()
    assert "pyproject.toml" in problems[0]


def test_schema_lists_every_setting_with_ranges():
    schema = config.json_schema()["properties"]
    assert schema["atlas.n_ctx"]["minimum"] == 512
    assert schema["atlas.log_level"]["enum"] == ["error", "warning", "info", "debug"]
    assert set(schema) == {f"atlas.{name}" for name in config.Settings.__dataclass_fields__}


BAD_VALUES = [  # (layer source, key, raw value, what the message must say is accepted)
    ("pyproject", "lens_enabled", "yes", "true or false"),  # TOML has real booleans: text is not one
    ("environment (ATLAS_*)", "lens_enabled", "maybe", "true or false"),
    ("pyproject", "n_threads", True, "an integer from 0 to 512"),  # a bool is not a number here
    ("pyproject", "n_threads", 2.5, "an integer from 0 to 512"),
    ("environment (ATLAS_*)", "n_threads", "two", "an integer from 0 to 512"),
    ("pyproject", "top_p", "0.9", "a number from 0.01 to 1.0"),
    ("pyproject", "top_p", False, "a number from 0.01 to 1.0"),
    ("pyproject", "tier_k", [1, 5], "a list of 3 numbers"),
    ("pyproject", "tier_k", [1, "5", 20], "a list of 3 numbers"),
    ("environment (ATLAS_*)", "tier_k", "[1, 5", "a list of 3 numbers"),
    ("pyproject", "model", 5, "a string"),
    ("pyproject", "seed", None, "an integer from 0 to 2147483647"),
]


@pytest.mark.parametrize("source,key,value,accepted", BAD_VALUES, ids=[f"{k}={v!r}" for _, k, v, _ in BAD_VALUES])
def test_a_value_of_the_wrong_kind_is_named_and_the_default_kept(source, key, value, accepted):
    settings, problems = config.resolve([ConfigLayer(source, {key: value})])
    assert getattr(settings, key) == getattr(config.Settings(), key)
    assert len(problems) == 1
    assert f"'{key}'" in problems[0] and source in problems[0] and f"expected {accepted}" in problems[0]


GOOD_TEXT = [("lens_enabled", "off", False), ("lens_enabled", " Yes ", True), ("n_threads", " 3 ", 3),
             ("top_p", "0.9", 0.9), ("tier_k", "[2, 6, 12]", (2, 6, 12)), ("draft_model", "null", None)]


@pytest.mark.parametrize("key,text,value", GOOD_TEXT, ids=[f"{k}={t!r}" for k, t, _ in GOOD_TEXT])
def test_environment_text_is_read_as_each_setting_s_type(key, text, value):
    settings, problems = config.resolve([config.environment_layer({f"ATLAS_{key.upper()}": text})])
    assert problems == [] and getattr(settings, key) == value


def test_a_whole_number_written_as_a_float_is_an_integer():
    settings, problems = config.resolve([ConfigLayer("pyproject", {"n_threads": 2.0})])
    assert problems == [] and settings.n_threads == 2 and isinstance(settings.n_threads, int)


def test_tool_atlas_that_is_not_a_table_and_an_unreadable_user_file_are_named(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool]\natlas = 5\n")
    user = tmp_path / "user.toml"
    user.write_text("seed = \n")
    settings, problems = config.load(tmp_path, user_file=user, environ={})
    assert settings == config.Settings()
    assert any("[tool.atlas]" in p and "not a table" in p for p in problems)
    assert any(str(user) in p and "is ignored" in p for p in problems)
