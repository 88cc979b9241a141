// The VS Code side: start atlas-ls with vscode-languageclient, keep a status bar item, offer restart/output
// commands. Decisions live in launch.ts, settings.ts and status.ts (tested without VS Code); this file only wires them.
import * as os from "node:os";
import * as vscode from "vscode";
import { ExecuteCommandRequest, LanguageClient, LanguageClientOptions, State } from "vscode-languageclient/node";
import { LaunchSettingError, ServerLaunch, resolveServerLaunch, startFailureMessage } from "./launch";
import { CONFIG_SECTION, STATUS_COMMAND, STATUS_NOTIFICATION } from "./protocol";
import { explicitServerSettings } from "./settings";
import { ClientState, StatusView, clientStateView, parseStatus, statusView } from "./status";

let controller: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("ATLAS");
  const statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "atlas.showOutput";
  const keys = Object.keys(context.extension.packageJSON.contributes.configuration.properties);
  controller = new ServerController(output, statusItem, keys);
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("atlas.restartServer", () => controller?.restart()),
    vscode.commands.registerCommand("atlas.showOutput", () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      // initializationOptions are fixed at start and outrank every other layer: a new value needs a new server.
      if (event.affectsConfiguration(CONFIG_SECTION)) void controller?.restart();
    }),
  );
  statusItem.show();
  await controller.restart();
}

export async function deactivate(): Promise<void> {
  await controller?.shutdown();
}

class ServerController {
  private client: LanguageClient | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly statusItem: vscode.StatusBarItem,
    private readonly contributedKeys: string[],
  ) {}

  /** Starts and stops run one after another: several settings changed at once must not leave two servers. */
  restart(): Promise<void> {
    return this.serially(async () => {
      await this.stop();
      await this.start();
    });
  }

  shutdown(): Promise<void> {
    return this.serially(() => this.stop());
  }

  private serially(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(step, step);
    return this.queue;
  }

  private async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
    const workspaceFolder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    let launch: ServerLaunch;
    try {
      launch = resolveServerLaunch(
        { serverCommand: config.get("serverCommand"), pythonPath: config.get("pythonPath") },
        { workspaceFolder, home: os.homedir(), env: process.env },
      );
    } catch (error) {
      if (!(error instanceof LaunchSettingError)) throw error;
      this.show(clientStateView("stopped"));
      void vscode.window.showErrorMessage(error.message);
      return;
    }
    this.output.appendLine(`Starting ${[launch.command, ...launch.args].join(" ")} (from ${launch.source})`);
    this.client = new LanguageClient("atlas", "ATLAS", { command: launch.command, args: launch.args,
      options: { cwd: workspaceFolder } }, this.clientOptions());
    this.client.onDidChangeState(({ newState }) => this.show(clientStateView(toClientState(newState))));
    this.client.onNotification(STATUS_NOTIFICATION, (params: unknown) => this.showStatus(params));
    try {
      await this.client.start();
    } catch (error) {
      this.show(clientStateView("stopped"));
      void vscode.window.showErrorMessage(startFailureMessage(launch, error));
      return;
    }
    this.client
      .sendRequest(ExecuteCommandRequest.type, { command: STATUS_COMMAND, arguments: [] })
      .then((status) => this.showStatus(status), () => undefined); // an older server may not know the command
  }

  private async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      await client.dispose(); // stops the server if it runs
    } catch (error) {
      this.output.appendLine(`Stopping the server: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private clientOptions(): LanguageClientOptions {
    const serverSettings = () =>
      explicitServerSettings(this.contributedKeys, (name) =>
        vscode.workspace.getConfiguration(CONFIG_SECTION).inspect(name));
    return {
      documentSelector: [{ scheme: "file", language: "python" }],
      outputChannel: this.output,
      initializationOptions: serverSettings(),
      middleware: {
        workspace: {
          // Answer section `atlas` with the values the user set, not VS Code's defaults, so pyproject.toml counts.
          configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) return answers;
            return params.items.map((item, i) => (item.section === CONFIG_SECTION ? serverSettings() : answers[i]));
          },
        },
      },
    };
  }

  private showStatus(params: unknown): void {
    const status = parseStatus(params);
    if (status) this.show(statusView(status));
  }

  private show(view: StatusView): void {
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }
}

function toClientState(state: State): ClientState {
  if (state === State.Running) return "running";
  if (state === State.Starting) return "starting";
  return "stopped";
}
