// Which settings go to the server and how: only the values the user set (user, workspace or folder level), never
// VS Code's defaults, so that the server's lower layers ([tool.atlas] in pyproject.toml, ATLAS_* variables, the user
// config file) still count. Keys stay in VS Code's camelCase; the server accepts both spellings.
import { CONFIG_SECTION } from "./protocol";

/** Settings of the extension itself (how to start the server); the server does not know them. */
export const EXTENSION_ONLY_SETTINGS = new Set(["serverCommand", "pythonPath", "trace"]);

/** The subset of VS Code's `WorkspaceConfiguration.inspect()` result that matters here. */
export interface SettingInspection {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The value the user chose for one setting (most specific level first), or undefined when it is left default. */
export function explicitValue(inspection: SettingInspection | undefined): unknown {
  if (!inspection) return undefined;
  for (const value of [inspection.workspaceFolderValue, inspection.workspaceValue, inspection.globalValue]) {
    if (value !== undefined) return value;
  }
  return undefined;
}

/** `atlas.nCtx` -> `nCtx`; undefined for keys of other sections and for the extension's own settings. */
export function serverSettingName(contributedKey: string): string | undefined {
  const prefix = CONFIG_SECTION + ".";
  if (!contributedKey.startsWith(prefix)) return undefined;
  const name = contributedKey.slice(prefix.length);
  return EXTENSION_ONLY_SETTINGS.has(name.split(".")[0]) ? undefined : name;
}

/**
 * The server's settings as the user set them, for `initializationOptions` and for answering
 * `workspace/configuration` on section `atlas`.
 * @param contributedKeys the keys of the extension's `contributes.configuration.properties`
 * @param inspect VS Code's inspection of one key of section `atlas` (e.g. `nCtx`)
 */
export function explicitServerSettings(
  contributedKeys: Iterable<string>,
  inspect: (name: string) => SettingInspection | undefined,
): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of contributedKeys) {
    const name = serverSettingName(key);
    if (name === undefined) continue;
    const value = explicitValue(inspect(name));
    if (value !== undefined) settings[name] = value;
  }
  return settings;
}
