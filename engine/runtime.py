"""The model runtime: one llama.cpp model and one context, driven through llama-cpp-python's low-level API.

`Runtime.generate` is best-of-k in one batch, after llama.cpp's examples/batched: the prompt is prefilled once into
sequence 0, its KV cache is shared with sequences 1..k-1 (`llama_memory_seq_cp`, a unified cache, so sharing costs
nothing), and every step decodes the next token of all live sequences in one `llama_decode`. Each sequence samples
with its own native sampler chain (top-k, top-p, min-p, temperature, a seeded dist; greedy when temperature is 0),
so no logits are copied into Python objects per token. The chosen token's log-probability is read from a numpy view
over llama.cpp's logits (one log-sum-exp per step over the rows decoded together).

Self-embeddings come from the same context: with `llama_set_embeddings` on during the decode steps only (the
prompt is prefilled with it off) llama.cpp returns each fed token's final hidden state, and each sequence keeps a
running sum. A candidate's embedding is the mean over its content tokens (not the end-of-generation token), read
after the prompt; `last_hidden` is the state at its last content token. `embed_strategy = "reread"` instead re-reads
the candidates' tokens over the shared prompt cache after generation; the throughput benchmark measures both.

With a draft model, a single greedy sequence (the FAST tier) uses speculative decoding, after examples/speculative:
the draft proposes tokens, the model checks them in one batch, and the output is the model's own greedy output.

Cancellation is checked between decode steps: `generate` then frees the sequences' cache and raises `Cancelled`
(its `partial` holds what was generated so far, with finish_reason "cancelled"). The prompt stays in sequence 0
between calls, so a second call with the same prompt (an escalation, or `embed`) only re-reads its last token.

The context is not thread-safe: `ModelWorker` owns a Runtime on one thread and queues callers' jobs.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from engine import models

log = logging.getLogger("atlas.runtime")

T = TypeVar("T")
FINISH_REASONS = ("eog", "stop", "length", "cancelled")


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    seed: int = 0  # temperature 0 = greedy

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Generation:
    text: str
    token_ids: list[int]  # every sampled token, the end-of-generation token included
    logprobs: list[float]  # log-probability of each sampled token under the model (temperature 1)
    finish_reason: str  # "eog" | "stop" | "length" | "cancelled"
    sampling: Sampling
    embedding: np.ndarray | None = None  # (n_embd,) float32: mean final hidden state over the content tokens
    last_hidden: np.ndarray | None = None  # (n_embd,) float32: the state at the last content token
    token_starts: list[int] = field(default_factory=list)  # byte offset in the UTF-8 text where each token begins

    @property
    def mean_logprob(self) -> float:
        return float(np.mean(self.logprobs)) if self.logprobs else float("-inf")

    def mean_logprob_within(self, spans: Sequence[tuple[int, int]]) -> float | None:
        """Mean log-probability of the tokens that begin inside the byte ranges `spans` ([start, end) of the
        UTF-8 text); None when no token does, or the offsets were not recorded. Tokens that begin past the text
        (the end-of-generation token, most stop-string tokens) are in no span of it; a token that straddles the
        cut counts where it begins."""
        picked = [lp for lp, at in zip(self.logprobs, self.token_starts) if any(a <= at < b for a, b in spans)]
        return float(np.mean(picked)) if picked else None

    @property
    def greedy(self) -> bool:
        return self.sampling.greedy


class Cancelled(Exception):
    """Generation was cancelled between two decode steps; `partial` holds the sequences as they were."""

    def __init__(self, partial: list[Generation]):
        super().__init__("generation cancelled")
        self.partial = partial


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    size_bytes: int
    n_embd: int
    n_ctx: int
    n_params: int
    n_vocab: int
    quantization: str
    name: str
    architecture: str
    fingerprint: str  # hash of the GGUF's metadata and size: Lens checkpoints are keyed by it
    chat_template: str | None = field(default=None, repr=False)


# --- llama.cpp plumbing ---------------------------------------------------------------------------------------------

_LOG_LEVELS = {3: logging.DEBUG, 4: logging.ERROR}  # llama.cpp's warnings are mostly load-time notes
_log_callback = None


def _llama():
    """The low-level bindings, imported on first use, with llama.cpp's chatter sent to our logger."""
    global _log_callback
    import llama_cpp.llama_cpp as L

    if _log_callback is None:
        @L.llama_log_callback
        def forward(level, text, _data):
            if level in _LOG_LEVELS:  # the load-time info lines go nowhere
                log.log(_LOG_LEVELS[level], "llama.cpp: %s", text.decode(errors="replace").rstrip())

        _log_callback = forward
        L.llama_log_set(_log_callback, ctypes.c_void_p(0))
        L.llama_backend_init()
    return L


def amx_in_build() -> bool:
    """Whether this llama.cpp build carries the AMX weight buffer (a compile-time feature of -march=native builds on
    Sapphire Rapids-class CPUs)."""
    return "AMX_INT8 = 1" in _llama().llama_print_system_info().decode(errors="replace")


def model_params(n_gpu_layers: int):
    """llama.cpp's model parameters for this runtime. Where the build has the AMX weight buffer, the extra buffer
    types are turned off: AMX's matrix multiply crashes the process (SIGSEGV on the first decode) with Q4_K_M models
    on some such machines (llama.cpp issue 20824, and this project's CI machine), and no error can be caught from
    Python. Builds without AMX keep their CPU repacking (which, measured on the default model, repacks 28 of its
    491 MB and changes nothing: 37.5 against 37.6 tokens/s, so little is lost where AMX's is turned off)."""
    params = _llama().llama_model_default_params()
    params.n_gpu_layers = n_gpu_layers
    params.use_extra_bufts = not amx_in_build()
    return params


def gpu_offload_active(n_gpu_layers: int) -> bool:
    """Whether layers will really run on a GPU: some are asked for and this llama.cpp build can offload."""
    return n_gpu_layers != 0 and bool(_llama().llama_supports_gpu_offload())


def default_threads() -> int:
    """One thread per physical core (hyper-threads slow llama.cpp down), within this process's CPU affinity."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        cores = set()
        physical = None
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    physical = value.strip()
                elif key.strip() == "core id":
                    cores.add((physical, value.strip()))
        return max(1, min(len(cores) or logical, logical))
    except OSError:
        return max(1, logical)


class _Batch:
    """A llama_batch filled token by token."""

    def __init__(self, L, capacity: int, n_seq_max: int):
        self.L, self.capacity = L, capacity
        self.raw = L.llama_batch_init(capacity, 0, n_seq_max)
        self.seqs: list[int] = []  # the sequence of each token, in batch order

    def clear(self) -> None:
        self.raw.n_tokens = 0
        self.seqs.clear()

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        i = self.raw.n_tokens
        self.raw.token[i], self.raw.pos[i], self.raw.n_seq_id[i] = token, pos, 1
        self.raw.seq_id[i][0] = seq
        self.raw.logits[i] = logits
        self.raw.n_tokens = i + 1
        self.seqs.append(seq)
        return i

    def __len__(self) -> int:
        return self.raw.n_tokens

    def free(self) -> None:
        if self.raw is not None:
            self.L.llama_batch_free(self.raw)
            self.raw = None


class _Context:
    """One model and its context: tokenizer, decode, and the KV cache of its sequences."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_gpu_layers: int, n_seq_max: int):
        L = self.L = _llama()
        self.model = L.llama_model_load_from_file(str(path).encode(), model_params(n_gpu_layers))
        if not self.model:
            raise models.ModelError(f"llama.cpp could not load {path} (see the log above for its reason)")
        cparams = L.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = cparams.n_ubatch = 512
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = cparams.n_threads_batch = n_threads
        cparams.kv_unified = True  # sequences share the prompt's cells instead of each getting n_ctx / n_seq_max
        cparams.embeddings = False
        cparams.pooling_type = 0  # LLAMA_POOLING_TYPE_NONE: one hidden state per token
        self.ctx = L.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            L.llama_model_free(self.model)
            raise models.ModelError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.memory = L.llama_get_memory(self.ctx)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.n_embd = L.llama_model_n_embd(self.model)
        self.n_ctx = L.llama_n_ctx(self.ctx)
        self.n_batch = L.llama_n_batch(self.ctx)
        self.n_seq_max = n_seq_max
        self.batch = _Batch(L, self.n_batch, n_seq_max)
        self.cached: list[int] = []  # the prompt tokens held in sequence 0
        self._pieces: dict[int, bytes] = {}
        self._embeddings = False

    # tokens
    def tokenize(self, text: str, *, special: bool) -> list[int]:
        data = text.encode()
        buf = (self.L.llama_token * (len(data) + 16))()
        n = self.L.llama_tokenize(self.vocab, data, len(data), buf, len(buf), special, special)
        if n < 0:
            raise ValueError(f"could not tokenize a text of {len(data)} bytes")
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The token's text (empty for control tokens such as end-of-generation)."""
        text = self._pieces.get(token)
        if text is None:
            buf = ctypes.create_string_buffer(256)
            n = self.L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            text = self._pieces[token] = buf.raw[:max(n, 0)]
        return text

    def is_eog(self, token: int) -> bool:
        return bool(self.L.llama_vocab_is_eog(self.vocab, token))

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return (self.L.llama_vocab_get_text(self.vocab, token) or b"").decode(errors="replace")

    # decoding
    def decode(self) -> None:
        ret = self.L.llama_decode(self.ctx, self.batch.raw)
        if ret != 0:
            raise RuntimeError(f"llama_decode failed with code {ret} (1 = the KV cache is full: raise n_ctx)")

    def set_embeddings(self, on: bool) -> None:
        if on != self._embeddings:
            self.L.llama_set_embeddings(self.ctx, on)
            self._embeddings = on

    def logits(self, n_rows: int) -> np.ndarray:
        """The logits of the last decode's outputs, in batch order: a view, not a copy."""
        return np.ctypeslib.as_array(self.L.llama_get_logits(self.ctx), shape=(n_rows, self.n_vocab))

    def hidden(self, n_rows: int) -> np.ndarray:
        """The final hidden states of the last decode's outputs, in batch order (embeddings on): a view."""
        return np.ctypeslib.as_array(self.L.llama_get_embeddings(self.ctx), shape=(n_rows, self.n_embd))

    def prefill(self, tokens: list[int]) -> None:
        """Put the prompt in sequence 0 with the last token's logits ready, reusing the cached common prefix.

        The same prompt must give the same logits whatever came before (same seeds, same candidates), and
        llama.cpp's numbers depend slightly on how tokens are batched. So the prompt is always read in chunks of
        n_batch counted from its start, and its last token alone; a reused prefix is cut back to a chunk boundary
        unless all but the last token are reused."""
        if not tokens:
            raise ValueError("the prompt is empty")
        body = len(tokens) - 1
        keep = 0
        while keep < min(len(self.cached), body) and self.cached[keep] == tokens[keep]:
            keep += 1
        if keep < body:
            keep -= keep % self.n_batch
        self.L.llama_memory_seq_rm(self.memory, -1, keep, -1)
        self.cached = tokens[:keep]
        self.set_embeddings(False)
        for start in range(keep, body, self.n_batch):
            self.batch.clear()
            for pos in range(start, min(start + self.n_batch, body)):
                self.batch.add(tokens[pos], pos, 0, False)
            self.decode()
        self.batch.clear()
        self.batch.add(tokens[body], body, 0, True)
        self.decode()
        self.cached = list(tokens)

    def share_prompt(self, k: int) -> None:
        for seq in range(1, k):
            self.L.llama_memory_seq_cp(self.memory, 0, seq, -1, -1)

    def forget_candidates(self, k: int, n_prompt: int) -> None:
        """Drop everything but the prompt in sequence 0."""
        for seq in range(1, k):
            self.L.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.L.llama_memory_seq_rm(self.memory, 0, n_prompt, -1)

    def truncate(self, seq: int, n_keep: int) -> None:
        self.L.llama_memory_seq_rm(self.memory, seq, n_keep, -1)

    def close(self) -> None:
        self.batch.free()
        if self.ctx:
            self.L.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            self.L.llama_model_free(self.model)
            self.model = None


def _log_sum_exp(rows: np.ndarray) -> np.ndarray:
    top = rows.max(axis=1)
    return top + np.log(np.exp(rows - top[:, None]).sum(axis=1))


class _Sequence:
    """One candidate being generated: its sampler chain, tokens, text and running hidden-state sum."""

    def __init__(self, L, seq_id: int, sampling: Sampling):
        self.L, self.id, self.sampling = L, seq_id, sampling
        self.chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if sampling.greedy:
            stages = [L.llama_sampler_init_greedy()]
        else:
            stages = [L.llama_sampler_init_top_k(sampling.top_k), L.llama_sampler_init_top_p(sampling.top_p, 1),
                      L.llama_sampler_init_min_p(sampling.min_p, 1), L.llama_sampler_init_temp(sampling.temperature),
                      L.llama_sampler_init_dist(sampling.seed & 0xFFFFFFFF)]
        for stage in stages:
            L.llama_sampler_chain_add(self.chain, stage)
        self.tokens: list[int] = []
        self.logprobs: list[float] = []
        self.starts: list[int] = []  # byte offset of each token's piece in `text`
        self.text = bytearray()
        self.cut: int | None = None  # where a stop string begins
        self.finish: str | None = None
        self.idx = -1  # batch index of the logits to sample from
        self.hidden_sum: np.ndarray | None = None
        self.hidden_last: np.ndarray | None = None
        self.n_hidden = 0

    def sample(self, ctx: _Context) -> int:
        return self.L.llama_sampler_sample(self.chain, ctx.ctx, self.idx)

    def accept(self, ctx: _Context, token: int, logprob: float, stop: list[bytes], budget: int) -> None:
        self.tokens.append(token)
        self.logprobs.append(logprob)
        self.starts.append(len(self.text))
        if ctx.is_eog(token):
            self.finish = "eog"
            return
        before = len(self.text)
        self.text += ctx.piece(token)
        for s in stop:
            at = self.text.find(s, max(0, before - len(s) + 1))
            if at >= 0:
                self.cut = at if self.cut is None else min(self.cut, at)
                self.finish = "stop"
        if self.finish is None and len(self.tokens) >= budget:
            self.finish = "length"

    def add_hidden(self, state: np.ndarray) -> None:
        if self.hidden_sum is None:
            self.hidden_sum = np.zeros(state.shape, np.float64)
        self.hidden_sum += state
        self.hidden_last = state.copy()
        self.n_hidden += 1

    def content_tokens(self) -> list[int]:
        return self.tokens[:-1] if self.finish == "eog" else list(self.tokens)

    def result(self, n_embd: int, with_embedding: bool) -> Generation:
        text = bytes(self.text[:self.cut] if self.cut is not None else self.text).decode("utf-8", errors="replace")
        embedding = last = None
        if with_embedding:
            if self.n_hidden:
                embedding = (self.hidden_sum / self.n_hidden).astype(np.float32)
                last = self.hidden_last.astype(np.float32)
            else:  # an empty candidate (end-of-generation first): nothing was read
                embedding, last = np.zeros(n_embd, np.float32), np.zeros(n_embd, np.float32)
        return Generation(text=text, token_ids=list(self.tokens), logprobs=list(self.logprobs),
                          finish_reason=self.finish or "cancelled", sampling=self.sampling, embedding=embedding,
                          last_hidden=last, token_starts=list(self.starts))

    def free(self) -> None:
        if self.chain:
            self.L.llama_sampler_free(self.chain)
            self.chain = None


# --- the runtime ----------------------------------------------------------------------------------------------------

class Runtime:
    """One model, one context (plus an optional draft model for speculative decoding)."""

    embed_strategy = "decode"  # or "reread"; see the module docstring
    n_draft = 8  # the most tokens the draft proposes per round
    draft_p_min = 0.5  # the draft stops proposing when its top token is less likely than this

    def __init__(self, ctx: _Context, info: models.GGUFInfo, draft: _Context | None = None, *,
                 draft_info: models.GGUFInfo | None = None, seed: int = 0, n_threads: int = 0):
        self._ctx, self._draft = ctx, draft
        self.info = ModelInfo(path=info.path, size_bytes=info.size_bytes, n_embd=ctx.n_embd, n_ctx=ctx.n_ctx,
                              n_params=int(ctx.L.llama_model_n_params(ctx.model)), n_vocab=ctx.n_vocab,
                              quantization=info.quantization, name=info.name, architecture=info.architecture,
                              fingerprint=info.fingerprint, chat_template=info.chat_template)
        self.draft_info = draft_info
        self.seed, self.n_threads = seed, n_threads
        self._formatter = None

    @classmethod
    def load(cls, model: str | Path | None = None, *, n_ctx: int = 4096, n_threads: int = 0, n_gpu_layers: int = 0,
             seed: int = 0, draft_model: str | Path | None = None, max_sequences: int = 32) -> "Runtime":
        """Resolve, check and load the model (and draft). `seed` offsets every Sampling's seed."""
        path = models.resolve_model(model)
        info = models.validate_gguf(path)
        threads = n_threads or default_threads()
        ctx = _Context(path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, n_seq_max=max_sequences)
        draft = draft_info = None
        try:
            if draft_model is not None:
                draft_path = models.resolve_model(draft_model, role="draft")
                draft_info = models.validate_gguf(draft_path)
                draft = _Context(draft_path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, n_seq_max=1)
                if draft.n_vocab != ctx.n_vocab:
                    raise models.ModelError(f"draft model {draft_path} has a vocabulary of {draft.n_vocab} tokens, "
                                            f"the model {ctx.n_vocab}: a draft must share the model's tokenizer")
        except BaseException:
            for c in (draft, ctx):
                if c is not None:
                    c.close()
            raise
        return cls(ctx, info, draft, draft_info=draft_info, seed=seed, n_threads=threads)

    @property
    def has_draft(self) -> bool:
        return self._draft is not None

    # --- text -----------------------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Prompt text to tokens (special tokens such as <|im_start|> are parsed)."""
        return self._ctx.tokenize(text, special=True)

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self._ctx.piece(t) for t in ids).decode("utf-8", errors="replace")

    def format_chat(self, messages: list[dict], **template_kwargs) -> str:
        """Messages to a prompt with the GGUF's own chat template, ending with the assistant's turn opened."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.info.chat_template
            if not template:
                raise models.ModelError(f"{self.info.path} has no chat template (tokenizer.chat_template) in its "
                                        "metadata; give prompts as plain text instead")
            L, vocab = self._ctx.L, self._ctx.vocab
            self._formatter = Jinja2ChatFormatter(template, eos_token=self._ctx.token_text(L.llama_vocab_eos(vocab)),
                                                  bos_token=self._ctx.token_text(L.llama_vocab_bos(vocab)))
        return self._formatter(messages=messages, **template_kwargs).prompt

    # --- generation -----------------------------------------------------------------------------------------------

    def generate(self, prompt: str, samplings: Sequence[Sampling], *, max_tokens: int, stop: Sequence[str] = (),
                 cancel: threading.Event | None = None, on_step: Callable[[int, int, int], None] | None = None,
                 embed: bool = True) -> list[Generation]:
        """k = len(samplings) candidates decoded together. `on_step(step, budget, finished)` after every decode
        step, `finished` counting the candidates that have stopped.
        Raises Cancelled when `cancel` is set (checked between steps)."""
        k = len(samplings)
        if not 1 <= k <= self._ctx.n_seq_max:
            raise ValueError(f"k must be from 1 to {self._ctx.n_seq_max}, got {k}")
        tokens = self.tokenize(prompt)
        budget = self._budget(len(tokens), k, max_tokens)
        stop_bytes = [s.encode() for s in stop if s]
        if self._draft is not None and k == 1 and samplings[0].greedy:
            return [self._speculative(tokens, samplings[0], budget, stop_bytes, cancel, on_step, embed)]
        ctx = self._ctx
        ctx.prefill(tokens)
        ctx.share_prompt(k)
        seqs = [_Sequence(ctx.L, i, self._seeded(s)) for i, s in enumerate(samplings)]
        try:
            self._decode_loop(seqs, len(tokens), budget, stop_bytes, cancel, on_step,
                              embed and self.embed_strategy == "decode")
            if embed and self.embed_strategy == "reread":
                self._reread(seqs, len(tokens))
            return [s.result(ctx.n_embd, embed) for s in seqs]
        finally:
            ctx.set_embeddings(False)
            ctx.forget_candidates(k, len(tokens))
            for s in seqs:
                s.free()

    def _seeded(self, sampling: Sampling) -> Sampling:
        return dataclasses.replace(sampling, seed=sampling.seed + self.seed) if self.seed else sampling

    def _budget(self, n_prompt: int, k: int, max_tokens: int) -> int:
        """Tokens per sequence: max_tokens, or less when k of them would not fit the context after the prompt."""
        room = (self._ctx.n_ctx - n_prompt) // k
        if room < 1 or max_tokens < 1:
            raise ValueError(f"the prompt has {n_prompt} tokens; with k={k} no room is left for max_tokens="
                             f"{max_tokens} in a context of {self._ctx.n_ctx} tokens (raise n_ctx)")
        if room < max_tokens:
            log.info("max_tokens %d lowered to %d so that %d sequences fit the context", max_tokens, room, k)
        return min(max_tokens, room)

    def _decode_loop(self, seqs: list[_Sequence], n_prompt: int, budget: int, stop: list[bytes],
                     cancel: threading.Event | None, on_step, embed: bool) -> None:
        """Sample every live sequence, then decode all their new tokens in one batch; until all have finished.
        With `embed`, embeddings are on during these steps and each finished sequence's last content token is
        fed once more, for its hidden state only."""
        ctx, batch = self._ctx, self._ctx.batch
        n_rows = 1  # outputs of the last decode: the prompt's last token
        step = 0
        ctx.set_embeddings(embed)
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled([s.result(ctx.n_embd, embed) for s in seqs])
            live = [s for s in seqs if s.finish is None]
            rows = ctx.logits(n_rows)
            lse = _log_sum_exp(rows)
            batch.clear()
            pos = n_prompt + step
            for s in live:
                token = s.sample(ctx)
                row = s.idx if s.idx >= 0 else n_rows - 1
                s.accept(ctx, token, float(rows[row, token] - lse[row]), stop, budget)
                if s.finish is None:
                    s.idx = batch.add(token, pos, s.id, True)
                elif embed and s.finish != "eog":
                    batch.add(token, pos, s.id, True)
            if not len(batch):
                break
            ctx.decode()
            n_rows = len(batch)
            if embed:
                states = ctx.hidden(n_rows)
                for row, seq_id in enumerate(batch.seqs):
                    seqs[seq_id].add_hidden(states[row])
            step += 1
            if on_step is not None:
                on_step(step, budget, sum(s.finish is not None for s in seqs))

    def _reread(self, seqs: list[_Sequence], n_prompt: int) -> None:
        """The "reread" strategy: drop the generated cells, then read the candidates' content tokens again over
        the shared prompt with embeddings on."""
        self._ctx.forget_candidates(len(seqs), n_prompt)
        self._ctx.share_prompt(len(seqs))
        self._read_hidden(seqs, [s.content_tokens() for s in seqs], n_prompt)

    def _read_hidden(self, seqs: list[_Sequence], token_lists: list[list[int]], n_prompt: int) -> None:
        """Decode each sequence's tokens after the prompt (already shared with it), embeddings on, in full batches."""
        ctx, batch = self._ctx, self._ctx.batch
        ctx.set_embeddings(True)
        stream = [(s, token, n_prompt + j) for s, tokens in zip(seqs, token_lists) for j, token in enumerate(tokens)]
        for start in range(0, len(stream), ctx.n_batch):
            batch.clear()
            owners = []
            for s, token, pos in stream[start:start + ctx.n_batch]:
                batch.add(token, pos, s.id, True)
                owners.append(s)
            ctx.decode()
            states = ctx.hidden(len(batch))
            for row, s in enumerate(owners):
                s.add_hidden(states[row])
        ctx.set_embeddings(False)

    def embed(self, prompt: str, completions: Sequence[str]) -> np.ndarray:
        """(k, n_embd) float32: each completion's mean final hidden state, read after the prompt (read once)."""
        return self.embed_with_last(prompt, completions)[0]

    def embed_with_last(self, prompt: str, completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Like `embed`, plus the hidden state at each completion's last token."""
        ctx = self._ctx
        tokens = self.tokenize(prompt)
        ctx.prefill(tokens)
        token_lists = [ctx.tokenize(c, special=False) for c in completions]
        means = np.zeros((len(completions), ctx.n_embd), np.float32)
        lasts = np.zeros_like(means)
        group: list[int] = []
        for i in range(len(completions)):  # as many completions at once as the context and sequence ids allow
            used = len(tokens) + sum(len(token_lists[j]) for j in group)
            if group and (len(group) == ctx.n_seq_max or used + len(token_lists[i]) > ctx.n_ctx):
                self._embed_group(group, token_lists, len(tokens), means, lasts)
                group = []
            if len(tokens) + len(token_lists[i]) > ctx.n_ctx:
                raise ValueError(f"completion {i} ({len(token_lists[i])} tokens) does not fit the context after "
                                 f"the prompt ({len(tokens)} tokens, n_ctx {ctx.n_ctx})")
            group.append(i)
        if group:
            self._embed_group(group, token_lists, len(tokens), means, lasts)
        return means, lasts

    def _embed_group(self, group, token_lists, n_prompt, means, lasts) -> None:
        ctx = self._ctx
        seqs = [_Sequence(ctx.L, seq_id, Sampling(temperature=0)) for seq_id in range(len(group))]
        try:
            ctx.share_prompt(len(group))
            self._read_hidden(seqs, [token_lists[i] for i in group], n_prompt)
            for s, i in zip(seqs, group):
                if s.n_hidden:
                    means[i] = s.hidden_sum / s.n_hidden
                    lasts[i] = s.hidden_last
        finally:
            ctx.set_embeddings(False)
            ctx.forget_candidates(len(group), n_prompt)
            for s in seqs:
                s.free()

    # --- speculative decoding -------------------------------------------------------------------------------------

    def _speculative(self, tokens: list[int], sampling: Sampling, budget: int, stop: list[bytes],
                     cancel: threading.Event | None, on_step, embed: bool) -> Generation:
        """Greedy decoding of one sequence, checked in batches of draft proposals; same output as plain greedy."""
        ctx, draft = self._ctx, self._draft
        n_past = len(tokens)
        ctx.prefill(tokens)
        draft.prefill(tokens)
        seq = _Sequence(ctx.L, 0, sampling)
        try:
            rows = ctx.logits(1)
            token = seq.sample(ctx)
            seq.accept(ctx, token, float(rows[0, token] - _log_sum_exp(rows)[0]), stop, budget)
            ctx.set_embeddings(embed)
            draft_valid = n_past  # positions the draft's cache holds correctly
            while seq.finish is None:
                if cancel is not None and cancel.is_set():
                    raise Cancelled([seq.result(ctx.n_embd, embed)])
                pending = seq.tokens[draft_valid - len(tokens):]  # ends with `token`, at position n_past
                proposal, draft_end = self._draft_tokens(pending, draft_valid,
                                                         min(self.n_draft, budget - len(seq.tokens)))
                token, n_kept = self._check_proposal(seq, token, proposal, n_past, stop, budget, embed)
                n_past += n_kept
                ctx.truncate(0, n_past)
                draft.truncate(0, n_past)
                draft_valid = min(draft_end, n_past)
                if on_step is not None:
                    on_step(len(seq.tokens), budget, 0)
            if embed and seq.finish != "eog":  # the last token's own state
                ctx.batch.clear()
                ctx.batch.add(token, n_past, 0, True)
                ctx.decode()
                seq.add_hidden(ctx.hidden(1)[0])
            return seq.result(ctx.n_embd, embed)
        finally:
            ctx.set_embeddings(False)
            ctx.forget_candidates(1, len(tokens))
            draft.forget_candidates(1, len(tokens))
            seq.free()

    def _check_proposal(self, seq: _Sequence, token: int, proposal: list[int], n_past: int, stop: list[bytes],
                        budget: int, embed: bool) -> tuple[int, int]:
        """Feed `token` (at n_past) and the draft's proposal after it in one batch, and accept the target's own
        choices while they agree with the proposal: the first disagreement is itself accepted (it is what plain
        greedy would have chosen), and nothing after it. Returns the last accepted token and how many of the fed
        tokens stay in the cache."""
        ctx = self._ctx
        ctx.batch.clear()
        for j, t in enumerate([token] + proposal):
            ctx.batch.add(t, n_past + j, 0, True)
        ctx.decode()
        rows = ctx.logits(len(ctx.batch))
        lse = _log_sum_exp(rows)
        states = ctx.hidden(len(ctx.batch)) if embed else None
        for i in range(len(ctx.batch)):
            if embed:
                seq.add_hidden(states[i])  # the state of the token fed at i, which is kept
            seq.idx = i
            token = seq.sample(ctx)
            seq.accept(ctx, token, float(rows[i, token] - lse[i]), stop, budget)
            if seq.finish is not None or i == len(proposal) or token != proposal[i]:
                break
        return token, i + 1

    def _draft_tokens(self, pending: list[int], start: int, n_max: int) -> tuple[list[int], int]:
        """Up to n_max greedy draft tokens following `pending` (the tokens the draft has not read yet, from
        position `start`); it stops early when unsure. Returns them and the end of what the draft has read."""
        draft, proposal = self._draft, []
        draft.batch.clear()
        for j, t in enumerate(pending):
            draft.batch.add(t, start + j, 0, j == len(pending) - 1)
        pos = start + len(pending)
        while True:
            draft.decode()
            row = draft.logits(1)[0]
            token = int(row.argmax())
            if float(np.exp(row[token] - _log_sum_exp(row[None, :])[0])) < self.draft_p_min:
                break
            proposal.append(token)
            if len(proposal) >= n_max:
                break
            draft.batch.clear()
            draft.batch.add(token, pos, 0, True)
            pos += 1
        return proposal, pos

    # --- lifetime -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        for ctx in (self._ctx, self._draft):
            if ctx is not None:
                ctx.close()
        self._draft = None

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the worker -----------------------------------------------------------------------------------------------------

class ModelWorker:
    """Owns one Runtime on one thread; `submit(fn)` queues `fn(runtime)` and returns its Future.

    Give it a function that loads a Runtime: loading then happens on the worker thread, the worker owns the
    Runtime and `close` frees it; if loading fails every job's Future carries the load error (a ModelError says
    what to do). Given a loaded Runtime instead, the worker only serialises access: the caller keeps ownership."""

    def __init__(self, runtime: Runtime | Callable[[], Runtime], *, name: str = "atlas-model"):
        self._jobs: queue.Queue = queue.Queue()
        self._runtime: Runtime | None = runtime if isinstance(runtime, Runtime) else None
        self._load = None if isinstance(runtime, Runtime) else runtime
        self._load_error: BaseException | None = None
        self._loaded = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings) -> "ModelWorker":
        """A worker loading the model, draft and options of engine.config.Settings."""
        def load() -> Runtime:
            draft = models.resolve_draft(settings.draft_model, settings.model,
                                         on_gpu=gpu_offload_active(settings.n_gpu_layers))
            return Runtime.load(settings.model, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                                n_gpu_layers=settings.n_gpu_layers, seed=settings.seed, draft_model=draft)
        return cls(load)

    def submit(self, fn: Callable[[Runtime], T]) -> "Future[T]":
        future: Future = Future()
        self._jobs.put((fn, future))
        return future

    def runtime(self, timeout: float | None = None) -> Runtime:
        """The loaded Runtime (waits for the load); for reading `info`, not for calling it off the worker."""
        self._loaded.wait(timeout)
        if self._load_error is not None:
            raise self._load_error
        return self._runtime

    def _serve(self) -> None:
        if self._load is not None:
            try:
                self._runtime = self._load()
            except BaseException as exc:  # reported through every job's Future
                self._load_error = exc
        self._loaded.set()
        while True:
            job = self._jobs.get()
            if job is None:
                break
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            if self._load_error is not None:
                future.set_exception(self._load_error)
                continue
            try:
                future.set_result(fn(self._runtime))
            except BaseException as exc:
                future.set_exception(exc)
        if self._load is not None and self._runtime is not None:
            self._runtime.close()

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued jobs, then free the model."""
        self._jobs.put(None)
        self._thread.join(timeout)
