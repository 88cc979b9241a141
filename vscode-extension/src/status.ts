// The status bar item's text and tooltip, from the server's `atlas/status` notification and the client's state.
import { AtlasStatus } from "./protocol";

export interface StatusView {
  text: string;
  tooltip: string;
  /** True when the item should draw attention (VS Code's error background). */
  error: boolean;
}

export type ClientState = "starting" | "running" | "stopped";

const CLICK_HINT = "Click to show the ATLAS output.";

export function clientStateView(state: ClientState): StatusView {
  switch (state) {
    case "starting":
      return { text: "$(sync~spin) ATLAS: starting", tooltip: `The ATLAS server is starting. ${CLICK_HINT}`, error: false };
    case "stopped":
      return {
        text: "$(debug-disconnect) ATLAS: stopped",
        tooltip: `The ATLAS server is not running; run "ATLAS: Restart the language server". ${CLICK_HINT}`,
        error: true,
      };
    case "running":
      return { text: "$(check) ATLAS", tooltip: `The ATLAS server is running. ${CLICK_HINT}`, error: false };
  }
}

export function statusView(status: AtlasStatus): StatusView {
  const model = status.model || "no model";
  const lines = [`Model: ${model} (${status.modelState})`, `Lens: ${status.lens || "unknown"}`];
  if (status.solving > 0) lines.push(`Solving: ${status.solving} function${status.solving === 1 ? "" : "s"}`);
  if (status.message) lines.push(status.message);
  lines.push(CLICK_HINT);
  return { text: statusText(status, model), tooltip: lines.join("\n"), error: status.modelState === "error" };
}

function statusText(status: AtlasStatus, model: string): string {
  if (status.modelState === "error") return `$(error) ATLAS: ${model} failed`;
  if (status.modelState === "loading") return `$(sync~spin) ATLAS: loading ${model}`;
  if (status.solving > 0) return `$(sync~spin) ATLAS: solving (${model})`;
  const lens = lensShort(status.lens);
  const state = status.modelState === "unloaded" ? `${model} (not loaded)` : model;
  return `$(sparkle) ATLAS: ${state}${lens ? ` · Lens ${lens}` : ""}`;
}

/** A few words of the Lens state for the status bar; the tooltip has all of it. */
export function lensShort(lens: string): string {
  const words = lens.split(/[:;,(]/)[0].trim();
  return words.length > 24 ? words.slice(0, 23) + "…" : words;
}

/** Accept a notification only if it has the fields we show; a server of another version may send other shapes. */
export function parseStatus(params: unknown): AtlasStatus | undefined {
  if (typeof params !== "object" || params === null) return undefined;
  const p = params as Record<string, unknown>;
  const states = ["unloaded", "loading", "ready", "error"];
  if (typeof p.modelState !== "string" || !states.includes(p.modelState)) return undefined;
  return {
    model: typeof p.model === "string" ? p.model : "",
    modelState: p.modelState as AtlasStatus["modelState"],
    lens: typeof p.lens === "string" ? p.lens : "",
    solving: typeof p.solving === "number" ? p.solving : 0,
    message: typeof p.message === "string" ? p.message : "",
  };
}
