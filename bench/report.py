"""report.html: the summary's tables and three plots (matplotlib PNGs embedded as data URIs, so the file stands
alone): the learning curve per epoch, energy histograms of passing and failing candidates, difficulty against pass
rate."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Sequence

HEADLINE = (
    ("tasks", "tasks"), ("graded on", "graded_on"), ("pass@1", "pass_at_1"), ("pass@k", "pass_at_k"),
    ("mean k", "k_mean"), ("first-pick accuracy (mixed tasks)", "first_pick_accuracy"),
    ("random-pick expectation", "random_pick_expectation"),
    ("log-probability first pick", "logprob_first_pick_accuracy"),
    ("log-probability first pick, kept lines only", "body_logprob_first_pick_accuracy"),
    ("Lens first pick", "lens_first_pick_accuracy"),
    ("mixed tasks", "mixed_tasks"), ("AUC (energy)", "auc"), ("energy gap (fail - pass)", "energy_gap"),
    ("tasks/hour (solve)", "tasks_per_hour"), ("tasks/hour (with grading)", "tasks_per_hour_with_grading"),
    ("tasks/hour (at the median task)", "tasks_per_hour_median"),
    ("generated tokens/s", "tokens_per_s"),
)
PERCENT = {"pass_at_1", "pass_at_k", "first_pick_accuracy", "random_pick_expectation", "logprob_first_pick_accuracy",
           "body_logprob_first_pick_accuracy", "lens_first_pick_accuracy", "pass_rate"}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in PERCENT and isinstance(value, (int, float)):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def plots(summary: dict[str, Any], records: Sequence[dict]) -> dict[str, str]:
    """The report's three charts as base64 PNGs, by title."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return {"learning curve": _learning_curve_png(plt, summary["learning_curve"]),
            "energy histograms": _energy_histogram_png(plt, records),
            "difficulty vs pass rate": _difficulty_png(plt, summary["difficulty_vs_pass_rate"])}


def _learning_curve_png(plt, curve: Sequence[dict]) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    epochs = [row["epoch"] for row in curve]
    for key, label in (("pass_rate", "pass@1"), ("first_pick_accuracy", "first-pick accuracy"),
                       ("lens_first_pick_accuracy", "Lens first pick")):
        values = [row[key] if row[key] is not None else float("nan") for row in curve]
        ax.plot(epochs, values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1)
    ax.set_xticks(epochs)
    ax.legend(fontsize=8)
    ax.set_title("learning curve")
    return _png(fig)


def _energy_histogram_png(plt, records: Sequence[dict]) -> str:
    scored = [c for r in records for c in r.get("candidates") or [] if c.get("energy") is not None]
    passing = [c["energy"] for c in scored if c["hidden"]]
    failing = [c["energy"] for c in scored if not c["hidden"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    if passing or failing:
        ax.hist([passing, failing], bins=20, label=["pass", "fail"], color=["tab:green", "tab:red"], alpha=0.7)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no energies yet (no Lens checkpoint: ranked by log-probability)", ha="center",
                va="center", fontsize=8, transform=ax.transAxes)
    ax.set_xlabel("energy (low = predicted pass)")
    ax.set_title("energies of candidates, by hidden-test outcome")
    return _png(fig)


def _difficulty_png(plt, bins: Sequence[dict]) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    labels = [f"{row['low']:.1f}-{row['high']:.1f}\n(n={row['n']})" for row in bins]
    ax.bar(labels, [row["pass_rate"] or 0.0 for row in bins], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_xlabel("difficulty (router)")
    ax.set_ylabel("pass@1")
    ax.set_title("difficulty against pass rate")
    return _png(fig)


def render(summary: dict[str, Any], records: Sequence[dict]) -> str:
    images = plots(summary, records)
    title = f"atlas-ls bench: {summary.get('dataset')} ({summary.get('mode')}, {summary.get('model')})"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if summary.get("notes"):
        parts.append("<ul class=notes>" + "".join(f"<li>{html.escape(n)}</li>" for n in summary["notes"]) + "</ul>")
    parts.append(_table(("figure", "value"), [(html.escape(label), _cell(key, summary.get(key)))
                                              for label, key in HEADLINE]))
    parts.append("<h2>tiers</h2>" + _table(("tier", "tasks"), [(html.escape(t), str(n))
                                                               for t, n in summary["tier_counts"].items()]))
    agreed = summary.get("agreement") or {}
    if agreed.get("tasks_compared"):
        parts.append("<h2>agreement among passing candidates</h2>" + _table(
            ("tasks compared", "choice changed", "gained a pass", "lost a pass"),
            [[str(agreed[k]) for k in ("tasks_compared", "changed", "gained", "lost")]]))
    doubted = summary.get("doubt") or {}
    if doubted.get("tasks_escalated"):
        parts.append("<h2>escalations past a weakly supported pass</h2>" + _table(
            ("tasks escalated", "choice changed", "gained a pass", "lost a pass"),
            [[str(doubted[k]) for k in ("tasks_escalated", "changed", "gained", "lost")]]))
    columns = ("epoch", "tasks", "pass_rate", "first_pick_accuracy", "lens_first_pick_accuracy", "energy_gap")
    parts.append("<h2>learning curve</h2>" + _table(
        ("epoch", "tasks", "pass rate", "first-pick accuracy", "Lens first pick", "energy gap"),
        [[_cell(c, row[c]) for c in columns] for row in summary["learning_curve"]]))
    quartiles = summary.get("energy_quartiles") or []
    if quartiles:
        parts.append("<h2>energy quartiles</h2>" + _table(
            ("energies", "candidates", "pass rate"),
            [(f"{q['low']:.3f} .. {q['high']:.3f}", str(q["n"]), _cell("pass_rate", q["pass_rate"]))
             for q in quartiles]))
    for name, uri in images.items():
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='{uri}'>")
    if summary.get("skipped_records"):
        parts.append("<h2>skipped records</h2><ul>" + "".join(
            f"<li>{html.escape(s)}</li>" for s in summary["skipped_records"]) + "</ul>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}.notes{color:#a40}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
