"""`atlas-ls doctor [--json]`: what atlas-ls would run with here, and what is missing.

The resolved model and draft model (path, size, n_embd, context, quantization), the llama.cpp backend and thread
count, the per-user directories, and the optional pieces (bubblewrap, GPU offload, the sandbox's isolation level).
Exit status 1 when the model cannot be resolved (the message says why and what to do), else 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="show the model, backend, directories and optional pieces in use")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--model", help="model profile or GGUF path (default: the `model` setting)")
    parser.add_argument("--draft-model", help="draft model profile or GGUF path, or 'none'")
    parser.add_argument("--load", action="store_true", help="also load the model in llama.cpp and decode a token")
    parser.add_argument("--workspace", type=Path, default=Path.cwd(), help="workspace whose settings apply")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import config

    settings, problems = config.load(args.workspace)
    model_setting = args.model or settings.model
    draft_setting = args.draft_model if args.draft_model is not None else settings.draft_model
    report = {"model": _model(model_setting, "model"),
              "draft_model": _draft(draft_setting, model_setting, settings.n_gpu_layers),
              **_backend(settings), **_directories(), "optional": _optional(), "settings_problems": problems}
    if args.load and "error" not in report["model"]:
        report["model"]["load_check"] = _load_check(report["model"]["path"], settings)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    problem = report["model"].get("error") or report["model"].get("load_check", {}).get("error")
    if problem:
        print(f"atlas-ls doctor: the model cannot be used: {problem}", file=sys.stderr)
    return 1 if problem else 0


def _describe(path: Path, setting: str) -> dict:
    from engine.models import PROFILES, validate_gguf

    info = validate_gguf(path)
    return {"setting": setting, "profile": setting if setting in PROFILES else None, "path": str(path),
            "size_bytes": info.size_bytes, "name": info.name, "architecture": info.architecture,
            "n_embd": info.n_embd, "n_ctx_train": info.context_length, "quantization": info.quantization,
            "fingerprint": info.fingerprint}


def _model(setting: str, role: str) -> dict:
    from engine.models import ModelError, resolve_model

    try:
        return _describe(resolve_model(setting, role=role), setting)
    except ModelError as exc:
        return {"setting": setting, "error": str(exc)}


def _draft(setting: str | None, model_setting: str, n_gpu_layers: int) -> dict | None:
    from engine.models import ModelError, resolve_draft

    try:
        path = resolve_draft(setting, model_setting, on_gpu=_on_gpu(n_gpu_layers))
    except ModelError as exc:
        return {"setting": setting, "error": str(exc)}
    return None if path is None else _describe(path, str(setting or path))


def _on_gpu(n_gpu_layers: int) -> bool:
    """As the runtime decides it; without llama.cpp nothing runs anywhere, and the doctor still reports the rest."""
    try:
        from engine.runtime import gpu_offload_active

        return gpu_offload_active(n_gpu_layers)
    except ImportError:
        return False


def _backend(settings) -> dict:
    from engine.runtime import amx_in_build, default_threads

    try:
        import llama_cpp
        import llama_cpp.llama_cpp as L
    except ImportError as exc:
        return {"backend": "unavailable", "llama_cpp_error": str(exc), "n_threads": settings.n_threads}
    system = L.llama_print_system_info().decode(errors="replace")
    gpu = bool(L.llama_supports_gpu_offload())
    names = {"CUDA": "CUDA", "METAL": "Metal", "VULKAN": "Vulkan", "HIP": "ROCm", "SYCL": "SYCL", "OPENCL": "OpenCL"}
    backend = next((label for key, label in names.items() if key in system.upper()), "CUDA" if gpu else "CPU")
    return {"backend": backend, "gpu_offload": gpu, "n_gpu_layers": settings.n_gpu_layers,
            "n_threads": settings.n_threads or default_threads(), "n_ctx": settings.n_ctx,
            "llama_cpp_version": llama_cpp.__version__, "system_info": system.strip(),
            "weight_repacking": not amx_in_build()}


def _directories() -> dict:
    from engine import paths

    return {"data_dir": str(paths.data_dir()), "cache_dir": str(paths.cache_dir()),
            "database": str(paths.database_path()), "config_file": str(paths.user_config_path())}


def _optional() -> dict:
    bwrap = shutil.which("bwrap")
    try:
        import sandbox

        isolation = sandbox.isolation_level()
    except Exception as exc:  # the sandbox module may be missing or no level may work: say so, do not fail
        isolation = f"unknown ({type(exc).__name__}: {exc})"
    return {"bubblewrap": bwrap, "sandbox_isolation": isolation}


def _load_check(path: str, settings) -> dict:
    from engine.runtime import Runtime, Sampling

    try:
        with Runtime.load(path, n_ctx=min(settings.n_ctx, 2048), n_threads=settings.n_threads,
                          n_gpu_layers=settings.n_gpu_layers) as runtime:
            text = runtime.generate("def add(a, b):\n", [Sampling(temperature=0)], max_tokens=4, embed=False)[0].text
            return {"ok": True, "n_params": runtime.info.n_params, "n_ctx": runtime.info.n_ctx, "sample": text}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _print_text(report: dict) -> None:
    def model_lines(label: str, m: dict | None) -> list[str]:
        if m is None:
            return [f"{label:<12} none"]
        if "error" in m:
            return [f"{label:<12} NOT USABLE: {m['error']}"]
        lines = [f"{label:<12} {m['path']}",
                 f"{'':<12} {m['name']} ({m['architecture']}), {m['quantization']}, {m['size_bytes'] / 1e6:,.0f} MB, "
                 f"n_embd {m['n_embd']}, trained context {m['n_ctx_train']}, fingerprint {m['fingerprint']}"]
        if "load_check" in m:
            lines.append(f"{'':<12} load check: {m['load_check']}")
        return lines

    lines = model_lines("model", report["model"]) + model_lines("draft model", report["draft_model"])
    if report["backend"] == "unavailable":
        lines.append(f"{'backend':<12} llama-cpp-python is not usable: {report['llama_cpp_error']}")
    else:
        lines.append(f"{'backend':<12} {report['backend']} (llama-cpp-python {report['llama_cpp_version']}), "
                     f"{report['n_threads']} threads, n_ctx {report['n_ctx']}, GPU offload "
                     f"{'available' if report['gpu_offload'] else 'not available'} "
                     f"(n_gpu_layers {report['n_gpu_layers']})")
        if not report["weight_repacking"]:
            lines.append(f"{'':<12} weight repacking off: this build has AMX, whose kernels crash on some machines "
                         "(llama.cpp issue 20824)")
    lines += [f"{'data dir':<12} {report['data_dir']}", f"{'database':<12} {report['database']}",
              f"{'cache dir':<12} {report['cache_dir']}", f"{'config file':<12} {report['config_file']}",
              f"{'bubblewrap':<12} {report['optional']['bubblewrap'] or 'not found (sandbox uses a weaker level)'}",
              f"{'sandbox':<12} isolation level {report['optional']['sandbox_isolation']}"]
    lines += [f"{'settings':<12} {problem}" for problem in report["settings_problems"]]
    print("\n".join(lines))
