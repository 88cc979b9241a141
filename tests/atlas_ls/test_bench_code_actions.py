"""`atlas-ls --bench code-actions` runs against the real server and reports its figures (the figures themselves are
for the report, not for a test to judge)."""

import json
import subprocess
import sys


def test_code_actions_bench_reports_round_trips():
    done = subprocess.run([sys.executable, "-m", "atlas_ls", "--bench", "code-actions", "--requests", "3",
                           "--functions", "30", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"small", "large_30_functions"}
    for cases in report.values():
        assert set(cases) == {"lines", "parse in process", "new version", "same version"}
        assert cases["new version"]["n"] == 3 and cases["new version"]["median_ms"] > 0
