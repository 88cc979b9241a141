// The launch configuration for real: start atlas-ls the way the extension would (same command resolution, same
// initializationOptions), speak LSP to it over stdio from Node, complete the handshake and shut it down.
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  ExitNotification,
  InitializeRequest,
  InitializeResult,
  InitializedNotification,
  LogMessageNotification,
  ProtocolConnection,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from "vscode-languageserver-protocol/node";
import { LaunchSettings, ServerLaunch, resolveServerLaunch } from "../src/launch";
import { explicitServerSettings } from "../src/settings";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const packageJson = require(path.resolve(__dirname, "..", "..", "package.json"));

/** The interpreter with atlas-ls installed: $ATLAS_PYTHON (set by the pytest wrapper), else the repository's .venv. */
function findPython(): string | undefined {
  const candidates = [process.env.ATLAS_PYTHON, path.join(repoRoot, ".venv", "bin", "python")];
  return candidates.find((candidate) => candidate && existsSync(candidate));
}

const python = findPython();
const skip = python ? false : "no Python with atlas-ls: set ATLAS_PYTHON or create the repository's .venv";

// What a user's settings.json would hold: keep the server light (no model preload, no file watching).
const userSettings: Record<string, object> = { preloadModel: { globalValue: false }, watchTests: { workspaceValue: false } };

interface Session {
  server: ChildProcess;
  connection: ProtocolConnection;
  stderr: string[];
  logs: string[];
}

function startServer(launch: ServerLaunch, cwd: string): Session {
  const server = spawn(launch.command, launch.args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  server.stderr!.on("data", (chunk) => stderr.push(String(chunk)));
  const connection = createProtocolConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
  const logs: string[] = [];
  connection.onNotification(LogMessageNotification.type, (params) => logs.push(params.message));
  connection.listen();
  return { server, connection, stderr, logs };
}

async function handshake(session: Session, workspace: string): Promise<InitializeResult> {
  const initializationOptions = explicitServerSettings(Object.keys(packageJson.contributes.configuration.properties), (name) => userSettings[name]);
  const result = await session.connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(workspace).href,
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: "workspace" }],
    capabilities: { window: { workDoneProgress: true }, workspace: { applyEdit: true, configuration: true } },
    initializationOptions,
  });
  await session.connection.sendNotification(InitializedNotification.type, {});
  return result;
}

async function shutdown(session: Session): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => session.server.on("exit", (code) => resolve(code)));
  await session.connection.sendRequest(ShutdownRequest.type);
  await session.connection.sendNotification(ExitNotification.type);
  const code = await exited;
  session.connection.dispose();
  return code;
}

async function checkLaunch(settings: LaunchSettings): Promise<void> {
  const workspace = repoRoot;
  const launch = resolveServerLaunch(settings, { workspaceFolder: workspace, home: os.homedir(), env: process.env });
  const session = startServer(launch, workspace);
  try {
    const result = await handshake(session, workspace);
    assert.equal(result.serverInfo?.name, "atlas-ls", session.stderr.join(""));
    assert.ok(result.capabilities, "the server announced its capabilities");
    assert.equal(await shutdown(session), 0, session.stderr.join(""));
  } finally {
    session.server.kill();
  }
}

test("atlas.pythonPath: `python -m atlas_ls` completes the handshake and shuts down cleanly", { skip, timeout: 120_000 }, async () => {
  await checkLaunch({ pythonPath: python });
});

test("atlas.serverCommand as an array: the same interpreter, spelled out", { skip, timeout: 120_000 }, async () => {
  await checkLaunch({ serverCommand: [python!, "-m", "atlas_ls"] });
});

test("atlas.serverCommand as a command line: the installed atlas-ls script", { skip, timeout: 120_000 }, async (t) => {
  const script = path.join(path.dirname(python ?? ""), "atlas-ls");
  if (!existsSync(script)) return t.skip(`no atlas-ls script next to ${python}`);
  await checkLaunch({ serverCommand: `"${script}" --stdio` });
});
