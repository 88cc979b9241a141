"""Reading a GGUF file's header without llama.cpp: enough to refuse a bad file with a clear message (llama.cpp may
crash on one) and to fingerprint a model.

A GGUF file is: magic `GGUF`, a version, the tensor and metadata counts, the metadata key/values, one info record
per tensor (name, shape, type, offset), then the tensor data from an aligned offset. From the tensor infos we know
how long the file must be, so a truncated download is caught here, not by a segfault later.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types: id -> struct format of a scalar (strings and arrays are handled apart).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# ggml tensor types: id -> (elements per block, bytes per block), as in ggml's type traits.
_TENSOR_TYPES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17),
}

# llama.cpp's `general.file_type` (enum llama_ftype) -> the quantization's usual name.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE",
}


class GGUFError(ValueError):
    """The file is not a usable GGUF; the message says why."""


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size_bytes: int
    version: int
    n_tensors: int
    required_bytes: int  # the least size the tensor infos allow
    header_bytes: int  # magic .. end of the tensor infos
    metadata: dict[str, Any] = field(repr=False)  # arrays are kept as their length only
    fingerprint: str = ""

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def n_embd(self) -> int | None:
        return self.arch_value("embedding_length")

    @property
    def context_length(self) -> int | None:
        return self.arch_value("context_length")

    @property
    def quantization(self) -> str:
        file_type = self.metadata.get("general.file_type")
        return FILE_TYPES.get(file_type, "unknown" if file_type is None else f"type {file_type}")

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")


class _Reader:
    """Bounds-checked reads over the mapped file: reading past the end means the file is truncated."""

    def __init__(self, buf: mmap.mmap | bytes, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError(f"{self.path} is truncated: its header runs past the end of the file "
                            f"({len(self.buf)} bytes); download or assemble it again")
        view = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return bytes(self.take(self.unpack("<Q"))).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            self.skip_array(item_kind, count)
            return _ArrayLength(count)
        raise GGUFError(f"{self.path}: unknown metadata value type {kind}; the file is corrupt or from a newer GGUF")

    def skip_array(self, kind: int, count: int) -> None:
        if kind in _SCALARS:
            self.take(struct.calcsize(_SCALARS[kind]) * count)
        elif kind == _STRING:
            self.skip_strings(count)
        else:
            for _ in range(count):
                self.value(kind)

    def skip_strings(self, count: int) -> None:
        """The tokenizer's vocabulary and merges: a few hundred thousand strings, so a tight loop."""
        buf, pos, length_at = self.buf, self.pos, struct.Struct("<Q").unpack_from
        try:
            for _ in range(count):
                pos += 8 + length_at(buf, pos)[0]
        except struct.error:
            pos = len(buf) + 1
        self.take(pos - self.pos)  # raises the truncation error if the strings ran past the end


class _ArrayLength(int):
    """An array-valued metadata entry, kept as its length (token lists are large and not needed here)."""


def read_info(path: str | Path) -> GGUFInfo:
    """Parse and check the header of a GGUF file; GGUFError says what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise GGUFError(f"model file {path} does not exist")
    if not path.is_file():
        raise GGUFError(f"model path {path} is not a file")
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"{path} is not a GGUF model file (only {size} bytes)")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _parse(buf, path, size)


def _parse(buf: mmap.mmap, path: Path, size: int) -> GGUFInfo:
    reader = _Reader(buf, path)
    if bytes(reader.take(4)) != MAGIC:
        raise GGUFError(f"{path} is not a GGUF model file (it does not start with 'GGUF'); "
                        "atlas-ls needs a llama.cpp GGUF model")
    version = reader.unpack("<I")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"{path} is GGUF version {version}; supported versions: {SUPPORTED_VERSIONS}")
    n_tensors, n_kv = reader.unpack("<Q"), reader.unpack("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = reader.string()
        metadata[key] = reader.value(reader.unpack("<I"))
    tensor_end = 0
    for _ in range(n_tensors):
        reader.string()  # name
        n_dims = reader.unpack("<I")
        dims = struct.unpack(f"<{n_dims}Q", reader.take(8 * n_dims))
        kind, offset = reader.unpack("<I"), reader.unpack("<Q")
        tensor_end = max(tensor_end, offset + _tensor_bytes(kind, dims))
    header_bytes = reader.pos
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
    data_start = -(-header_bytes // alignment) * alignment
    required = data_start + tensor_end
    if size < required:
        raise GGUFError(f"{path} is truncated: it has {size:,} bytes but its tensors need {required:,}; "
                        "download or assemble it again")
    digest = hashlib.sha256(struct.pack("<Q", size))
    digest.update(buf[:header_bytes])
    return GGUFInfo(path=path, size_bytes=size, version=version, n_tensors=n_tensors, required_bytes=required,
                    header_bytes=header_bytes, metadata=metadata, fingerprint=digest.hexdigest()[:16])


def _tensor_bytes(kind: int, dims: tuple[int, ...]) -> int:
    """Bytes of one tensor's data; 0 for a type this table does not know (its offset still bounds the file)."""
    if kind not in _TENSOR_TYPES:
        return 0
    block, block_bytes = _TENSOR_TYPES[kind]
    elements = 1
    for d in dims:
        elements *= d
    return elements // block * block_bytes
