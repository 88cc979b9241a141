"""The names the server and its clients (VS Code extension, Neovim config) share.

Clients read these constants (or copy them) instead of guessing: the commands the server executes through
`workspace/executeCommand`, the code-action kind it offers, the configuration section it asks for, and the custom
notification that carries the model and Lens state for a status bar. Changing a value here breaks clients.
"""

from __future__ import annotations

# --- commands (workspace/executeCommand) ---

SOLVE_COMMAND = "atlas.solve"
"""Solve one stub function. Arguments: one object
`{"uri": str, "qualname": str, "version": int | null, "line": int}` (line 0-based, the `def` line). Reports
work-done progress (or messages), sends `workspace/applyEdit`, and answers when the solve ends with
`{"applied": bool, "verified": bool, "rank": int | null, "message": str}`. Cancelling the request, the progress,
or running CANCEL_COMMAND stops it."""

APPLY_CANDIDATE_COMMAND = "atlas.applyCandidate"
"""Apply another candidate of the last solve of a function. Arguments: one object
`{"uri": str, "qualname": str, "rank": int}` (rank 1 = tried first). Answers like SOLVE_COMMAND."""

CANCEL_COMMAND = "atlas.cancel"
"""Cancel running solves, for clients without work-done progress cancellation. Arguments: none (cancel all) or
one object `{"uri": str, "qualname": str}`."""

STATUS_COMMAND = "atlas.status"
"""Return the status object (see STATUS_NOTIFICATION) at once. Arguments: none."""

COMMANDS = (SOLVE_COMMAND, APPLY_CANDIDATE_COMMAND, CANCEL_COMMAND, STATUS_COMMAND)

# --- code actions ---

CODE_ACTION_KIND = "refactor.rewrite.atlas"
"""Kind of "Solve with ATLAS" and of the alternative-candidate actions. A sub-kind of `refactor.rewrite`, so a
client asking for `only: ["refactor"]` or `["refactor.rewrite"]` gets them too."""

SOLVE_TITLE = "Solve with ATLAS"

# --- configuration ---

CONFIG_SECTION = "atlas"
"""The `workspace/configuration` section; keys are the fields of `engine.config.Settings` (snake_case or
camelCase). `atlas-ls config schema` prints them as a JSON schema with an `atlas.` prefix."""

# --- notifications (server -> client) ---

STATUS_NOTIFICATION = "atlas/status"
"""Sent whenever the model or Lens state changes. Params: `{"model": str, "modelState": "unloaded" | "loading" |
"ready" | "error", "lens": str, "solving": int, "message": str}`; `lens` is a short human-readable state (e.g.
"cold start: ranking by log-probability", "trained on 120 samples"). Clients may ignore it."""
