"""The engine: everything between a task and a verified answer.

It owns the model runtime on llama.cpp (model resolution and assembly, one context, batched best-of-k generation,
self-embeddings, speculative decoding), the solve pipeline, the difficulty router, the per-user pattern cache,
workspace context, settings and per-user paths. It drives `lens` (ranking) and `sandbox` (testing) and knows
nothing of LSP; both front doors (`atlas_ls`, `bench`) come through here.
"""
