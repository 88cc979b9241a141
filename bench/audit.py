"""The honesty check: every text the pipeline hands the model (prompts, tokenized text, embedded completions) is
recorded, and after each task the bench checks that none of the task's hidden test text is in it. The model worker
is wrapped, not changed: jobs run exactly as they would, on the same thread."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

MIN_FINGERPRINT = 16  # shorter snippets ("1 2 3", "True") occur in prompts by chance


class PromptLog:
    def __init__(self) -> None:
        self._texts: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: Any) -> None:
        if isinstance(text, str) and text:
            with self._lock:
                self._texts.append(text)

    def take(self) -> list[str]:
        """Everything recorded since the last call."""
        with self._lock:
            texts, self._texts = self._texts, []
        return texts


class _AuditedRuntime:
    """Delegates to the real Runtime, writing down the text of every call that reaches the model."""

    def __init__(self, runtime: Any, log: PromptLog) -> None:
        self._runtime = runtime
        self._log = log

    def generate(self, prompt: str, *args, **kwargs):
        self._log.add(prompt)
        return self._runtime.generate(prompt, *args, **kwargs)

    def embed(self, prompt: str, completions, *args, **kwargs):
        self._log.add(prompt)
        for completion in completions:
            self._log.add(completion)
        return self._runtime.embed(prompt, completions, *args, **kwargs)

    def tokenize(self, text: str, *args, **kwargs):
        self._log.add(text)
        return self._runtime.tokenize(text, *args, **kwargs)

    def format_chat(self, messages, *args, **kwargs):
        for message in messages:
            self._log.add(message.get("content"))
        return self._runtime.format_chat(messages, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


class AuditingWorker:
    """A ModelWorker whose jobs see an audited Runtime."""

    def __init__(self, worker: Any, log: PromptLog) -> None:
        self.worker = worker
        self.log = log

    def submit(self, fn: Callable[[Any], Any]):
        return self.worker.submit(lambda runtime: fn(_AuditedRuntime(runtime, self.log)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.worker, name)


def hidden_fingerprints(hidden_texts: Iterable[str], public_text: str) -> set[str]:
    """Lines of the hidden tests long enough to be distinctive and absent from what the task shows publicly (a
    HumanEval check may repeat a docstring example: that one is public)."""
    prints = set()
    for text in hidden_texts:
        for line in text.splitlines():
            line = line.strip()
            if len(line) >= MIN_FINGERPRINT and line not in public_text:
                prints.add(line)
    return prints


def leaked(fingerprints: set[str], prompts: Iterable[str]) -> list[str]:
    """The fingerprints found in any prompt (empty = nothing hidden reached the model)."""
    prompts = list(prompts)
    return sorted(fp for fp in fingerprints if any(fp in p for p in prompts))
