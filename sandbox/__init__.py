"""The sandbox: runs untrusted candidate code against tests, isolated and bounded, and decides pass or fail.

Stdlib only on the parent side. It owns the test kinds (stdin/stdout, functional, assert-style, pytest), process
isolation (rlimits, process groups, namespaces, bubblewrap when present), verdicts, and running many candidates in
ranked order with early exit. Nothing a candidate does may change a verdict falsely or touch the user's files.
"""
