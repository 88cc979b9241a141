import assert from "node:assert/strict";
import { test } from "node:test";
import { AtlasStatus } from "../src/protocol";
import { clientStateView, lensShort, parseStatus, statusView } from "../src/status";

const ready: AtlasStatus = { model: "qwen2.5-coder-0.5b", modelState: "ready", lens: "trained on 120 samples", solving: 0, message: "" };

test("a ready model shows its name and the Lens state", () => {
  const view = statusView(ready);
  assert.equal(view.text, "$(sparkle) ATLAS: qwen2.5-coder-0.5b · Lens trained on 120 samples");
  assert.match(view.tooltip, /^Model: qwen2\.5-coder-0\.5b \(ready\)\nLens: trained on 120 samples\n/);
  assert.equal(view.error, false);
});

test("loading, solving, unloaded and error states read differently", () => {
  assert.equal(statusView({ ...ready, modelState: "loading" }).text, "$(sync~spin) ATLAS: loading qwen2.5-coder-0.5b");
  const solving = statusView({ ...ready, solving: 2 });
  assert.equal(solving.text, "$(sync~spin) ATLAS: solving (qwen2.5-coder-0.5b)");
  assert.match(solving.tooltip, /Solving: 2 functions/);
  assert.match(statusView({ ...ready, modelState: "unloaded" }).text, /qwen2\.5-coder-0\.5b \(not loaded\)/);
  const failed = statusView({ ...ready, modelState: "error", message: "model file not found: /x.gguf" });
  assert.equal(failed.text, "$(error) ATLAS: qwen2.5-coder-0.5b failed");
  assert.match(failed.tooltip, /model file not found: \/x\.gguf/);
  assert.equal(failed.error, true);
});

test("the Lens state is shortened for the bar, in full in the tooltip", () => {
  const cold = { ...ready, lens: "cold start: ranking by log-probability" };
  assert.equal(lensShort(cold.lens), "cold start");
  assert.match(statusView(cold).tooltip, /Lens: cold start: ranking by log-probability/);
  assert.equal(lensShort("x".repeat(40)).length, 24);
  assert.equal(statusView({ ...ready, lens: "" }).text, "$(sparkle) ATLAS: qwen2.5-coder-0.5b");
});

test("client states: starting, running, stopped", () => {
  assert.match(clientStateView("starting").text, /starting/);
  assert.equal(clientStateView("running").error, false);
  const stopped = clientStateView("stopped");
  assert.equal(stopped.error, true);
  assert.match(stopped.tooltip, /Restart the language server/);
});

test("notifications of an unexpected shape are ignored, missing fields defaulted", () => {
  for (const bad of [null, "ready", 3, {}, { modelState: "warming" }]) assert.equal(parseStatus(bad), undefined);
  assert.deepEqual(parseStatus({ modelState: "loading", model: "m" }), { model: "m", modelState: "loading", lens: "", solving: 0, message: "" });
  assert.deepEqual(parseStatus({ ...ready, extra: 1 }), ready);
});
