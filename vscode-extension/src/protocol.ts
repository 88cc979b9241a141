// Names shared with the server, copied from atlas_ls/protocol.py (tests/atlas_ls/test_vscode_extension.py checks
// that they still match).
export const STATUS_NOTIFICATION = "atlas/status";
export const STATUS_COMMAND = "atlas.status";
export const CONFIG_SECTION = "atlas";

export type ModelState = "unloaded" | "loading" | "ready" | "error";

/** Params of STATUS_NOTIFICATION (and the result of STATUS_COMMAND). */
export interface AtlasStatus {
  model: string;
  modelState: ModelState;
  lens: string;
  solving: number;
  message: string;
}
