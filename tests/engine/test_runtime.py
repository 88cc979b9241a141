"""The runtime on the real default model (loaded once per session by the `runtime` fixture). Token budgets are
short: these tests check behaviour, the throughput benchmark measures speed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.models import ModelError
from engine.runtime import Cancelled, ModelWorker, Runtime, Sampling, gpu_offload_active

SAMPLED = [Sampling(seed=seed) for seed in range(5)]
GREEDY = Sampling(temperature=0)


@pytest.fixture(scope="module")
def prompt(runtime) -> str:
    return runtime.format_chat([{"role": "user", "content":
                                 "Write a Python function `fib(n)` returning the n-th Fibonacci number. Only code."}])


@pytest.fixture(scope="module")
def open_prompt(runtime) -> str:
    """A task with many good answers (on the Fibonacci prompt two of five seeds write the same first 24 tokens)."""
    return runtime.format_chat([{"role": "user", "content":
                                 "Write a small Python function of your choice that works on a list of strings. "
                                 "Only code."}])


@pytest.fixture(scope="module")
def five(runtime, open_prompt):
    """k=5 sampled candidates with fixed seeds, decoded together."""
    return runtime.generate(open_prompt, SAMPLED, max_tokens=24)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_chat_template_comes_from_the_model(runtime, prompt):
    assert runtime.info.chat_template and "<|im_start|>" in runtime.info.chat_template
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    assert runtime.detokenize(runtime.tokenize("def f(x):\n    return x")) == "def f(x):\n    return x"


def test_k_candidates_are_distinct_and_complete(runtime, five):
    assert len(five) == 5
    assert len({tuple(g.token_ids) for g in five}) == 5
    for g in five:
        assert g.finish_reason in ("eog", "length")
        assert len(g.logprobs) == len(g.token_ids) <= 24
        assert all(lp <= 0 for lp in g.logprobs) and g.mean_logprob > -5
        assert g.embedding.shape == g.last_hidden.shape == (runtime.info.n_embd,)
        assert g.embedding.dtype == np.float32 and np.isfinite(g.embedding).all()


def test_same_seeds_give_the_same_candidates_and_embeddings(runtime, open_prompt, five):
    again = runtime.generate(open_prompt, SAMPLED, max_tokens=24)
    assert [g.token_ids for g in again] == [g.token_ids for g in five]
    embeddings = np.stack([g.embedding for g in five])
    assert embeddings.shape == (5, runtime.info.n_embd)
    np.testing.assert_allclose(np.stack([g.embedding for g in again]), embeddings, rtol=0, atol=1e-5)


def test_greedy_batched_agrees_with_greedy_single(runtime, prompt):
    single = runtime.generate(prompt, [GREEDY], max_tokens=32)[0]
    batched = runtime.generate(prompt, [GREEDY] * 4, max_tokens=32)
    for g in batched:
        assert g.token_ids == single.token_ids
        # the batched kernels round differently: measured |difference| up to a few hundredths of a nat
        assert max(abs(a - b) for a, b in zip(g.logprobs, single.logprobs)) < 0.1
        assert cosine(g.embedding, single.embedding) > 0.999


def test_embed_rereads_the_same_hidden_states(runtime, open_prompt, five):
    """embed() reads the texts again over the cached prompt: it agrees with the states collected while decoding."""
    texts = [g.text for g in five]
    reread = runtime.embed(open_prompt, texts)
    assert reread.shape == (5, runtime.info.n_embd)
    for g, vector in zip(five, reread):
        assert cosine(g.embedding, vector) > 0.99
    np.testing.assert_allclose(runtime.embed(open_prompt, texts), reread, rtol=0, atol=1e-5)
    other = runtime.embed(open_prompt, ["print('something else entirely')"])[0]
    assert cosine(other, reread[0]) < cosine(five[0].embedding, reread[0])


def test_reread_strategy_matches_decode_strategy(runtime, open_prompt, five, monkeypatch):
    monkeypatch.setattr(runtime, "embed_strategy", "reread")
    again = runtime.generate(open_prompt, SAMPLED, max_tokens=24)
    assert [g.token_ids for g in again] == [g.token_ids for g in five]
    for a, b in zip(again, five):
        assert cosine(a.embedding, b.embedding) > 0.999


def test_stop_strings_and_token_budget(runtime, prompt):
    stopped = runtime.generate(prompt, [GREEDY], max_tokens=40, stop=["return"])[0]
    assert stopped.finish_reason == "stop" and "return" not in stopped.text and stopped.text
    capped = runtime.generate(prompt, [GREEDY], max_tokens=5, embed=False)[0]
    assert capped.finish_reason == "length" and len(capped.token_ids) == 5 and capped.embedding is None


def test_cancellation_between_steps_frees_the_sequences(runtime, prompt):
    cancel = threading.Event()

    finished_counts: list[int] = []

    def on_step(step: int, budget: int, finished: int) -> None:
        finished_counts.append(finished)
        if step == 3:
            cancel.set()

    with pytest.raises(Cancelled) as caught:
        runtime.generate(prompt, SAMPLED[:3], max_tokens=40, cancel=cancel, on_step=on_step)
    assert [g.finish_reason for g in caught.value.partial] == ["cancelled"] * 3
    assert finished_counts == [0, 0, 0]  # none of the three had stopped when the cancel came
    assert [len(g.token_ids) for g in caught.value.partial] == [3, 3, 3]  # 3 steps: 3 tokens sampled and decoded
    L, ctx = runtime._ctx.L, runtime._ctx
    n_prompt = len(runtime.tokenize(prompt))
    assert L.llama_memory_seq_pos_max(ctx.memory, 0) == n_prompt - 1  # only the prompt is kept
    assert all(L.llama_memory_seq_pos_max(ctx.memory, seq) == -1 for seq in (1, 2))
    assert runtime.generate(prompt, [GREEDY], max_tokens=4)[0].token_ids  # and the runtime goes on


def test_prompts_that_cannot_be_read_are_clear_errors(runtime):
    with pytest.raises(ValueError, match="no room is left"):
        runtime.generate("word " * 5000, [GREEDY], max_tokens=8)
    with pytest.raises(ValueError, match="the prompt is empty"):
        runtime.embed("", ["x = 1"])


def test_bad_model_files_are_refused_before_llama_cpp(tmp_path):
    (tmp_path / "text.gguf").write_text("not a model\n" * 10)
    (tmp_path / "cut.gguf").write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\x05" * 30)
    cases = {tmp_path / "absent.gguf": "does not exist", tmp_path / "text.gguf": "not a GGUF model file",
             tmp_path / "cut.gguf": "truncated"}
    for path, message in cases.items():
        with pytest.raises(ModelError, match=message):
            Runtime.load(path, n_threads=2)


def test_worker_runs_jobs_in_order_on_one_thread(runtime, prompt):
    worker = ModelWorker(runtime)
    try:
        threads = [worker.submit(lambda rt: threading.get_ident()) for _ in range(3)]
        greedy = worker.submit(lambda rt: rt.generate(prompt, [GREEDY], max_tokens=4, embed=False)[0].text)
        failing = worker.submit(lambda rt: rt.generate(prompt, [], max_tokens=4))
        assert len({f.result(timeout=120) for f in threads}) == 1
        assert threads[0].result() != threading.get_ident()
        assert greedy.result(timeout=120)
        with pytest.raises(ValueError, match="k must be"):
            failing.result(timeout=120)
    finally:
        worker.close()
    assert runtime.generate(prompt, [GREEDY], max_tokens=2, embed=False)[0].token_ids  # not closed by the worker


def test_worker_reports_a_load_error_through_each_future(tmp_path):
    worker = ModelWorker(lambda: Runtime.load(tmp_path / "absent.gguf"))
    try:
        with pytest.raises(ModelError, match="does not exist"):
            worker.submit(lambda rt: rt.info).result(timeout=60)
    finally:
        worker.close()


def test_speculative_greedy_equals_plain_greedy(runtime, prompt, default_model_path):
    """The default model as its own draft: nothing to gain in speed, but the output must be plain greedy's."""
    plain = runtime.generate(prompt, [GREEDY], max_tokens=32)[0]
    with Runtime.load(default_model_path, n_threads=2, n_ctx=2048, draft_model=default_model_path) as spec:
        assert spec.has_draft
        fast = spec.generate(prompt, [GREEDY], max_tokens=32)[0]
        stopped = spec.generate(prompt, [GREEDY], max_tokens=32, stop=["return"])[0]
    assert fast.token_ids == plain.token_ids and fast.text == plain.text
    assert fast.token_starts == plain.token_starts
    assert fast.finish_reason == plain.finish_reason
    assert max(abs(a - b) for a, b in zip(fast.logprobs, plain.logprobs)) < 0.1
    assert cosine(fast.embedding, plain.embedding) > 0.999
    assert stopped.finish_reason == "stop" and plain.text.startswith(stopped.text) and "return" not in stopped.text


def test_gpu_offload_needs_layers_and_a_build_that_offloads():
    import llama_cpp.llama_cpp as L

    assert gpu_offload_active(0) is False  # nothing asked for: CPU, so a profile's natural draft stays out
    assert gpu_offload_active(-1) is bool(L.llama_supports_gpu_offload())


def test_extra_buffer_types_are_off_exactly_where_the_build_has_amx(monkeypatch):
    """AMX's weight buffer crashes the process on some machines (llama.cpp issue 20824): the runtime leaves extra
    buffer types off where the build has it, and keeps CPU repacking where it does not."""
    import llama_cpp.llama_cpp as L

    from engine import runtime

    reported = L.llama_print_system_info().decode()
    assert runtime.amx_in_build() is ("AMX_INT8 = 1" in reported)
    assert runtime.model_params(0).use_extra_bufts is not runtime.amx_in_build()
    for with_amx in (True, False):
        monkeypatch.setattr(runtime, "amx_in_build", lambda: with_amx)
        params = runtime.model_params(7)
        assert params.use_extra_bufts is not with_amx and params.n_gpu_layers == 7


def test_token_offsets_place_every_token_in_the_text(runtime, prompt):
    g = runtime.generate(prompt, [GREEDY], max_tokens=40, stop=["return"])[0]
    pieces = [runtime._ctx.piece(t) for t in g.token_ids]
    assert len(g.token_starts) == len(g.token_ids) and g.token_starts[0] == 0
    assert all(b - a == len(p) for a, b, p in zip(g.token_starts, g.token_starts[1:], pieces))  # contiguous
    text = g.text.encode()
    first_line = text.index(b"\n") + 1
    opening = [lp for lp, at in zip(g.logprobs, g.token_starts) if at < first_line]
    assert 0 < len(opening) < len(g.logprobs)
    assert g.mean_logprob_within([(0, first_line)]) == pytest.approx(float(np.mean(opening)))


def test_mean_logprob_within_counts_the_tokens_that_begin_in_a_span():
    from engine.runtime import Generation

    g = Generation(text="ab\ncd\n", token_ids=[1, 2, 3, 4], logprobs=[-1.0, -2.0, -3.0, -4.0], finish_reason="eog",
                   sampling=GREEDY, token_starts=[0, 2, 3, 6])
    assert g.mean_logprob_within([(3, 6)]) == -3.0  # "cd\n" is the third token only
    assert g.mean_logprob_within([(0, 3), (3, 6)]) == -2.0  # the end-of-generation token (at 6) is in neither
    assert g.mean_logprob_within([]) is None
    assert Generation(text="x", token_ids=[1], logprobs=[-1.0], finish_reason="eog",
                      sampling=GREEDY).mean_logprob_within([(0, 1)]) is None  # no offsets recorded
