"""The Lens: a small torch network C(x) that maps a candidate's self-embedding (the generating model's own hidden
states over task + candidate) to an energy, low meaning likely correct.

It owns the cost field and its training, calibration to P(pass), the labelled sample store in the per-user SQLite
file (and the helper that opens that file), checkpoints per model fingerprint, and the selection metrics the
benchmark reports. It knows nothing of the model runtime or of LSP: it sees vectors, labels and task keys.
"""
