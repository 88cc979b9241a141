"""atlas-ls: the language server and the `atlas-ls` command line.

This package is the editor's front door onto the engine: `server.py` turns the solve pipeline into LSP features
(code actions, progress, hover) with pygls, and `cli.py` is the `atlas-ls` command, whose subcommands live with the
packages that own them (`engine.commands`) and whose `--bench` mode is forwarded to `bench`.
"""

__version__ = "0.1.0"
