// How the extension starts the server: from `atlas.serverCommand`, else `atlas.pythonPath -m atlas_ls`, else
// `atlas-ls` on PATH. Pure functions, so the tests run without VS Code.

export interface LaunchSettings {
  serverCommand?: unknown;
  pythonPath?: unknown;
}

export interface LaunchContext {
  workspaceFolder?: string;
  home: string;
  env: Record<string, string | undefined>;
}

export interface ServerLaunch {
  command: string;
  args: string[];
  /** Which setting chose the command, for messages. */
  source: "atlas.serverCommand" | "atlas.pythonPath" | "default";
}

/** A setting that cannot be turned into a command; the message names the setting and says what it accepts. */
export class LaunchSettingError extends Error {}

export const DEFAULT_SERVER_COMMAND = "atlas-ls";

export function resolveServerLaunch(settings: LaunchSettings, context: LaunchContext): ServerLaunch {
  const words = serverCommandWords(settings.serverCommand);
  if (words.length > 0) {
    const [command, ...args] = words.map((word) => expandVariables(word, context));
    return { command, args, source: "atlas.serverCommand" };
  }
  const python = settings.pythonPath;
  if (python !== undefined && python !== null && python !== "") {
    if (typeof python !== "string") {
      throw new LaunchSettingError(`atlas.pythonPath must be a path to a Python interpreter, not ${describe(python)}`);
    }
    return { command: expandVariables(python, context), args: ["-m", "atlas_ls"], source: "atlas.pythonPath" };
  }
  return { command: DEFAULT_SERVER_COMMAND, args: [], source: "default" };
}

function serverCommandWords(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return splitCommandLine(value);
  if (Array.isArray(value) && value.every((word) => typeof word === "string")) {
    return value.length > 0 && value[0] === "" ? reject(value) : value;
  }
  return reject(value);
}

function reject(value: unknown): never {
  throw new LaunchSettingError(
    `atlas.serverCommand must be an array of strings (the program, then its arguments) or one command line, ` +
      `not ${describe(value)}`,
  );
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Split a command line into words: whitespace separates, single or double quotes group, backslash escapes. */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) {
    throw new LaunchSettingError(`atlas.serverCommand has an unclosed ${quote} quote: ${text}`);
  }
  if (inWord) words.push(word);
  return words;
}

/** Expand `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~`, as VS Code users expect. */
export function expandVariables(word: string, context: LaunchContext): string {
  const expanded = word.replace(/\$\{(workspaceFolder|userHome|env:([A-Za-z_][A-Za-z0-9_]*))\}/g, (whole, name, env) => {
    if (env) return context.env[env] ?? "";
    if (name === "userHome") return context.home;
    if (context.workspaceFolder === undefined) {
      throw new LaunchSettingError(`${whole} is used in the server command, but no folder is open`);
    }
    return context.workspaceFolder;
  });
  if (expanded === "~") return context.home;
  if (expanded.startsWith("~/")) return context.home + expanded.slice(1);
  return expanded;
}

/** What to tell the user when the server process cannot be started. */
export function startFailureMessage(launch: ServerLaunch, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  const commandLine = [launch.command, ...launch.args].join(" ");
  const advice =
    launch.source === "default"
      ? "Install atlas-ls (pip install atlas-ls) where VS Code can find it, or set atlas.pythonPath to a Python " +
        "interpreter that has it, or atlas.serverCommand to the command that starts it."
      : `Check ${launch.source}.`;
  return `ATLAS could not start its language server (${commandLine}): ${reason}. ${advice}`;
}
