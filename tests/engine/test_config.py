from pathlib import Path

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
