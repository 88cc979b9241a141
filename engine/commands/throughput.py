"""`atlas-ls --bench throughput [--model M] [--json]`: how fast the runtime generates, on one prompt and model.

(a) one sequence, (b) k=5 and k=8 decoded together in one batch (aggregate tokens/s), (c) k=5 as five sequential
calls of llama-cpp-python's high-level `Llama.create_completion`, (d) the self-embedding cost as a fraction of k=5
generation time, for both strategies: hidden states collected while decoding ("decode": k=5 with embeddings minus
k=5 without) and the candidates re-read over the cached prompt ("reread"). With `--draft-model`, also (e) greedy
single-sequence speed with and without speculative decoding. Each timing is the best of `--repeat` runs, since the
machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

PROMPT = ("Write a Python module for a small inventory system: a dataclass Item, a class Inventory with methods to "
          "add, remove, search by name and list items below a stock threshold, each with a docstring, and a few "
          "example calls at the end.")
TARGETS = {"batched_5_over_single": 1.4, "batched_5_over_sequential": 1.4, "embed_fraction_max": 0.15,
           "embed_fraction_aim": 0.05}


def bench_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="atlas-ls --bench throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model profile or GGUF path (default: the `model` setting)")
    parser.add_argument("--draft-model", help="also measure speculative decoding with this draft model")
    parser.add_argument("--max-tokens", type=int, default=96, help="tokens per sequence (default 96)")
    parser.add_argument("--n-threads", type=int, help="llama.cpp threads (default: the `n_threads` setting)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best counts (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from engine import config
    from engine.models import ModelError

    settings, _ = config.load(None)
    try:
        report = measure(args.model or settings.model, args.draft_model, max_tokens=args.max_tokens,
                         n_threads=args.n_threads or settings.n_threads, repeat=max(1, args.repeat))
    except ModelError as exc:
        print(f"atlas-ls --bench throughput: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _best(repeat: int, run) -> tuple[float, int, object]:
    """(seconds, tokens, last result) of the fastest of `repeat` runs of run() -> (tokens, result)."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        tokens, result = run()
        elapsed = time.perf_counter() - start
        if best is None or elapsed / max(tokens, 1) < best[0] / max(best[1], 1):
            best = (elapsed, tokens, result)
    return best


def measure(model: str, draft_model: str | None, *, max_tokens: int, n_threads: int, repeat: int) -> dict:
    from engine.models import resolve_model
    from engine.runtime import Runtime, Sampling

    path = resolve_model(model)
    runtime = Runtime.load(path, n_ctx=4096, n_threads=n_threads)
    prompt = runtime.format_chat([{"role": "user", "content": PROMPT}])
    samplings = [Sampling(seed=seed) for seed in range(8)]

    def generate(k: int, embed: bool = False):
        gens = runtime.generate(prompt, samplings[:k], max_tokens=max_tokens, embed=embed)
        return sum(len(g.token_ids) for g in gens), gens

    generate(1)  # warm-up: page the weights in, cache the prompt
    single = _best(repeat, lambda: generate(1))
    batched = {k: _best(repeat, lambda k=k: generate(k)) for k in (5, 8)}
    with_embeddings = _best(repeat, lambda: generate(5, embed=True))
    texts = [g.text for g in batched[5][2]]
    reread = _best(repeat, lambda: (sum(len(runtime.tokenize(t)) for t in texts), runtime.embed(prompt, texts)))
    strategy = runtime.embed_strategy
    info = runtime.info
    speculative = _speculative(runtime, path, draft_model, prompt, max_tokens, n_threads, repeat)
    runtime.close()
    sequential = _sequential(path, prompt, samplings[:5], max_tokens, n_threads, repeat)

    rate = {name: tokens / seconds for name, (seconds, tokens, _) in
            {"single": single, "5": batched[5], "8": batched[8], "sequential": sequential}.items()}
    base = batched[5][0]
    per_token = {"plain": base / batched[5][1], "embed": with_embeddings[0] / with_embeddings[1]}
    fraction_decode = per_token["embed"] / per_token["plain"] - 1  # the token counts of the two runs may differ
    fraction_reread = reread[0] / base
    report = {
        "model": str(path), "model_name": info.name, "n_embd": info.n_embd, "n_threads": runtime.n_threads,
        "max_tokens": max_tokens, "repeat": repeat, "load_average": list(os.getloadavg()),
        "single_tok_s": round(rate["single"], 2),
        "batched_tok_s": {"5": round(rate["5"], 2), "8": round(rate["8"], 2)},
        "sequential_tok_s": round(rate["sequential"], 2),
        "embed_fraction": round(fraction_decode if strategy == "decode" else fraction_reread, 4),
        "embed_strategy": strategy,
        "embed_fraction_decode": round(fraction_decode, 4), "embed_fraction_reread": round(fraction_reread, 4),
        "ratios": {"batched_5_over_single": round(rate["5"] / rate["single"], 3),
                   "batched_8_over_single": round(rate["8"] / rate["single"], 3),
                   "batched_5_over_sequential": round(rate["5"] / rate["sequential"], 3)},
        "tokens": {"single": single[1], "5": batched[5][1], "8": batched[8][1], "sequential": sequential[1]},
        "targets": TARGETS,
    }
    if speculative:
        report["speculative"] = speculative
    return report


def _sequential(path, prompt: str, samplings, max_tokens: int, n_threads: int, repeat: int):
    """k=5 as five calls of the high-level API, the way a caller without batching would do it."""
    from llama_cpp import Llama

    from engine.runtime import default_threads

    threads = n_threads or default_threads()
    llm = Llama(str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)

    def five_calls():
        tokens = 0
        for s in samplings:
            out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=s.temperature, top_p=s.top_p,
                                        top_k=s.top_k, min_p=s.min_p, seed=s.seed)
            tokens += out["usage"]["completion_tokens"]
        return tokens, None

    llm.create_completion(prompt, max_tokens=4)  # warm-up, as for the batched runs
    try:
        return _best(repeat, five_calls)
    finally:
        llm.close()


def _speculative(runtime, path, draft_model, prompt, max_tokens, n_threads, repeat) -> dict | None:
    if not draft_model:
        return None
    from engine.runtime import Runtime, Sampling

    greedy = [Sampling(temperature=0)]
    plain = _best(repeat, lambda: _count(runtime.generate(prompt, greedy, max_tokens=max_tokens, embed=False)))
    with Runtime.load(path, n_ctx=4096, n_threads=n_threads, draft_model=draft_model) as spec:
        fast = _best(repeat, lambda: _count(spec.generate(prompt, greedy, max_tokens=max_tokens, embed=False)))
    same = plain[2][0].token_ids == fast[2][0].token_ids
    plain_rate, fast_rate = plain[1] / plain[0], fast[1] / fast[0]
    return {"draft_model": str(draft_model), "greedy_tok_s": round(plain_rate, 2),
            "speculative_tok_s": round(fast_rate, 2), "speedup": round(fast_rate / plain_rate, 3), "same_output": same}


def _count(gens):
    return sum(len(g.token_ids) for g in gens), gens


def format_report(r: dict) -> str:
    ratios, t = r["ratios"], r["targets"]
    lines = [
        f"model {r['model_name']} ({r['model']}), {r['n_threads']} threads, {r['max_tokens']} tokens per sequence, "
        f"best of {r['repeat']}, load average {r['load_average'][0]:.2f}",
        f"(a) single sequence          {r['single_tok_s']:8.2f} tok/s",
        f"(b) batched k=5              {r['batched_tok_s']['5']:8.2f} tok/s  = {ratios['batched_5_over_single']:.2f}x "
        f"single (target >= {t['batched_5_over_single']}x)",
        f"    batched k=8              {r['batched_tok_s']['8']:8.2f} tok/s  = {ratios['batched_8_over_single']:.2f}x "
        "single",
        f"(c) k=5 sequential calls     {r['sequential_tok_s']:8.2f} tok/s; batched k=5 is "
        f"{ratios['batched_5_over_sequential']:.2f}x (target >= {t['batched_5_over_sequential']}x)",
        f"(d) embeddings ({r['embed_strategy']})     {100 * r['embed_fraction']:7.1f}% of k=5 generation time "
        f"(target <= {100 * t['embed_fraction_max']:.0f}%, aim < {100 * t['embed_fraction_aim']:.0f}%); "
        f"decode {100 * r['embed_fraction_decode']:.1f}%, reread {100 * r['embed_fraction_reread']:.1f}%",
    ]
    if "speculative" in r:
        s = r["speculative"]
        lines.append(f"(e) speculative greedy       {s['speculative_tok_s']:8.2f} tok/s vs {s['greedy_tok_s']:.2f} "
                     f"plain = {s['speedup']:.2f}x (draft {s['draft_model']}; same output: {s['same_output']})")
    return "\n".join(lines)
