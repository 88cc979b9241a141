import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { explicitServerSettings, explicitValue, serverSettingName } from "../src/settings";

const packageJson = JSON.parse(readFileSync(path.resolve(__dirname, "..", "..", "package.json"), "utf8"));
const contributedKeys = Object.keys(packageJson.contributes.configuration.properties);

test("only values the user set are sent, the most specific level winning", () => {
  const inspections: Record<string, object> = {
    model: { defaultValue: "qwen2.5-coder-0.5b", globalValue: "qwen2.5-coder-1.5b" },
    nCtx: { defaultValue: 4096, globalValue: 2048, workspaceValue: 8192 },
    seed: { defaultValue: 0, globalValue: 1, workspaceValue: 2, workspaceFolderValue: 3 },
    nThreads: { defaultValue: 0 },
    preloadModel: { defaultValue: true, workspaceValue: false },
    draftModel: { defaultValue: null, globalValue: null },
  };
  const settings = explicitServerSettings(contributedKeys, (name) => inspections[name]);
  assert.deepEqual(settings, { model: "qwen2.5-coder-1.5b", nCtx: 8192, seed: 3, preloadModel: false, draftModel: null });
});

test("the extension's own settings never reach the server", () => {
  const everywhere = { globalValue: "set" };
  const settings = explicitServerSettings(contributedKeys, () => everywhere);
  for (const own of ["serverCommand", "pythonPath", "trace", "trace.server"]) assert.ok(!(own in settings), own);
  // ...and every other contributed setting is a server setting, forwarded under its VS Code name.
  const serverKeys = contributedKeys.filter((key) => !/^atlas\.(serverCommand|pythonPath|trace\.)/.test(key));
  assert.ok(serverKeys.length > 0);
  assert.deepEqual(Object.keys(settings).sort(), serverKeys.map((key) => key.slice("atlas.".length)).sort());
});

test("setting names: section prefix stripped, other sections ignored", () => {
  assert.equal(serverSettingName("atlas.nGpuLayers"), "nGpuLayers");
  assert.equal(serverSettingName("atlas.trace.server"), undefined);
  assert.equal(serverSettingName("python.defaultInterpreterPath"), undefined);
  assert.equal(explicitValue(undefined), undefined);
  assert.equal(explicitValue({ globalValue: 0 }), 0);
});
