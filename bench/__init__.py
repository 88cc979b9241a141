"""Headless benchmarks: datasets (LiveCodeBench, HumanEval, EvalPlus, GPQA, SciCode), the runner that drives the
engine over them, honest grading on hidden tests, and the reports (summary.json, results.jsonl, report.html).
"""
