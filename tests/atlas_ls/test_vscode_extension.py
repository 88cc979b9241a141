"""The VS Code extension: its own unit tests (launch-command resolution, settings -> initializationOptions, status
text, and a real LSP handshake with the server started the way the extension starts it), its packaging into a
.vsix, and its agreement with the server on settings and protocol names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from atlas_ls import protocol
from tests.conftest import REPO_ROOT

EXTENSION = REPO_ROOT / "vscode-extension"
NPM = shutil.which("npm")
NODE = shutil.which("node")
needs_npm = pytest.mark.skipif(NPM is None, reason="npm is not installed")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    # The extension's server test starts atlas-ls with this interpreter, the one running the tests.
    env = {**os.environ, "ATLAS_PYTHON": sys.executable}
    return subprocess.run(command, cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed() -> None:
    result = run([NPM, "ci", "--no-audit", "--no-fund"], timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_npm
def test_extension_unit_tests_pass(installed):
    result = run([NPM, "test"], timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"^# pass (\d+)$", output, re.M)
    skipped = re.search(r"^# skipped (\d+)$", output, re.M)
    assert passed and int(passed.group(1)) >= 20, output
    # The handshake tests must really have run against this interpreter's atlas-ls, not been skipped.
    assert skipped and skipped.group(1) == "0", output


@needs_npm
def test_extension_packages_into_a_vsix(installed, tmp_path):
    vsix = tmp_path / "atlas-ls.vsix"
    result = run([NPM, "run", "package", "--", "--out", str(vsix)], timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    names = set(zipfile.ZipFile(vsix).namelist())
    assert "extension/out/src/extension.js" in names
    assert "extension/node_modules/vscode-languageclient/node.js" in names
    assert not any(name.startswith("extension/out/test/") or name.endswith(".ts") for name in names)


@needs_node
def test_settings_match_the_server_schema():
    """package.json's settings are generated from `atlas-ls config schema`; after a setting is added to
    engine.config.Settings, run `npm run sync-schema` in vscode-extension/."""
    result = run([NODE, "scripts/sync-schema.mjs", "--check", "--python", sys.executable], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_protocol_names_match_the_server():
    source = (EXTENSION / "src" / "protocol.ts").read_text()
    constants = dict(re.findall(r'^export const (\w+) = "([^"]*)";$', source, re.M))
    assert constants, "src/protocol.ts declares the names it shares with atlas_ls/protocol.py"
    for name, value in constants.items():
        assert getattr(protocol, name) == value, f"{name} differs between protocol.ts and atlas_ls/protocol.py"
