"""A real LSP session over stdio: the server initializes and shuts down cleanly."""

import sys

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient, make_test_lsp_client


@pytest.fixture
async def raw_client():
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "atlas_ls")
    yield client
    await client.stop()


async def test_initialize_and_shutdown_cleanly(raw_client: LanguageClient):
    result = await raw_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    assert result.server_info is not None and result.server_info.name == "atlas-ls"
    await raw_client.shutdown_session()
    await raw_client._server.wait()
    assert raw_client._server.returncode == 0
    assert raw_client.error is None
