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
  ConfigurationRequest,
  ExecuteCommandRequest,
  ExitNotification,
  InitializeRequest,
  InitializeResult,
  InitializedNotification,
  LogMessageNotification,
  ProtocolConnection,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from "vscode-languageserver-protocol/node";
import { LaunchSettings, ServerLaunch, resolveServerLaunch } from "../src/launch";
import { CONFIG_SECTION, STATUS_COMMAND } from "../src/protocol";
import { explicitServerSettings } from "../src/settings";
import { parseStatus, statusView } from "../src/status";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const packageJson = require(path.resolve(__dirname, "..", "..", "package.json"));

/** The interpreter with atlas-ls installed: $ATLAS_PYTHON (set by the pytest wrapper), else the repository's .venv. */
function findPython(): string | undefined {
  const candidates = [process.env.ATLAS_PYTHON, path.join(repoRoot, ".venv", "bin", "python")];
  return candidates.find((candidate) => candidate && existsSync(candidate));
}

const python = findPython();
const skip = python ? false : "no Python with atlas-ls: set ATLAS_PYTHON or create the repository's .venv";

type Inspections = Record<string, object>;

// What a user's settings.json would hold: keep the server light (no model preload, no file watching).
const lightSettings: Inspections = { preloadModel: { globalValue: false }, watchTests: { workspaceValue: false } };

interface Session {
  server: ChildProcess;
  connection: ProtocolConnection;
  stderr: string[];
  logs: string[];
  shown: string[];
  settings: Record<string, unknown>;
}

function startServer(launch: ServerLaunch, cwd: string, inspections: Inspections): Session {
  const server = spawn(launch.command, launch.args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  server.stderr!.on("data", (chunk) => stderr.push(String(chunk)));
  const connection = createProtocolConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
  const logs: string[] = [];
  const shown: string[] = [];
  connection.onNotification(LogMessageNotification.type, (params) => logs.push(params.message));
  connection.onNotification(ShowMessageNotification.type, (params) => shown.push(params.message));
  const keys = Object.keys(packageJson.contributes.configuration.properties);
  const settings = explicitServerSettings(keys, (name) => inspections[name]);
  // Answer workspace/configuration as the extension's middleware does: the values the user set.
  connection.onRequest(ConfigurationRequest.type, (params) =>
    params.items.map((item) => (item.section === CONFIG_SECTION ? settings : null)));
  connection.listen();
  return { server, connection, stderr, logs, shown, settings };
}

async function handshake(session: Session, workspace: string): Promise<InitializeResult> {
  const result = await session.connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(workspace).href,
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: "workspace" }],
    capabilities: { window: { workDoneProgress: true }, workspace: { applyEdit: true, configuration: true } },
    initializationOptions: session.settings,
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

function launchFor(settings: LaunchSettings): ServerLaunch {
  return resolveServerLaunch(settings, { workspaceFolder: repoRoot, home: os.homedir(), env: process.env });
}

/** Start the server, complete the handshake, run `check` on the live session, shut down cleanly. */
async function withServer(launch: ServerLaunch, inspections: Inspections, check: (session: Session) => Promise<void>) {
  const session = startServer(launch, repoRoot, inspections);
  try {
    const result = await handshake(session, repoRoot);
    assert.equal(result.serverInfo?.name, "atlas-ls", session.stderr.join(""));
    assert.ok(result.capabilities, "the server announced its capabilities");
    await check(session);
    assert.equal(await shutdown(session), 0, session.stderr.join(""));
  } finally {
    session.server.kill();
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const noCheck = async () => undefined;

test("atlas.pythonPath: `python -m atlas_ls` completes the handshake and shuts down cleanly", { skip, timeout: 120_000 }, async () => {
  await withServer(launchFor({ pythonPath: python }), lightSettings, noCheck);
});

test("atlas.serverCommand as an array: the same interpreter, spelled out", { skip, timeout: 120_000 }, async () => {
  await withServer(launchFor({ serverCommand: [python!, "-m", "atlas_ls"] }), lightSettings, noCheck);
});

test("atlas.serverCommand as a command line: the installed atlas-ls script", { skip, timeout: 120_000 }, async (t) => {
  const script = path.join(path.dirname(python ?? ""), "atlas-ls");
  if (!existsSync(script)) return t.skip(`no atlas-ls script next to ${python}`);
  await withServer(launchFor({ serverCommand: `"${script}" --stdio` }), lightSettings, noCheck);
});

test("settings reach the server under their VS Code names, and its status feeds the status bar", { skip, timeout: 120_000 }, async () => {
  // A model name nobody has: with preload off the server only records it, and reports it in its status.
  const inspections = { ...lightSettings, model: { workspaceValue: "model-set-in-vscode" } };
  await withServer(launchFor({ pythonPath: python }), inspections, async (session) => {
    const askStatus = async () =>
      parseStatus(await session.connection.sendRequest(ExecuteCommandRequest.type, { command: STATUS_COMMAND, arguments: [] }));
    assert.ok(await askStatus(), "atlas.status answers in the shape the status bar reads");
    // The server applies its settings once `initialized` has fetched workspace/configuration: ask until it has.
    let status = await askStatus();
    for (let tries = 0; status?.model !== "model-set-in-vscode" && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await askStatus();
    }
    assert.equal(status?.model, "model-set-in-vscode");
    assert.match(statusView(status!).text, /model-set-in-vscode/);
  });
});

test("an invalid setting from VS Code is shown to the user by name", { skip, timeout: 120_000 }, async () => {
  const inspections = { ...lightSettings, nCtx: { globalValue: 1 } };
  await withServer(launchFor({ pythonPath: python }), inspections, async (session) => {
    const shown = await until("a message about n_ctx", () => session.shown.find((message) => /n_ctx/.test(message)));
    assert.match(shown, /512/, "the message says what the setting accepts");
  });
});
