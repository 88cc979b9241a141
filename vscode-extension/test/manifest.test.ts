// The manifest and the code agree: what package.json promises VS Code is what extension.ts provides.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

const root = path.resolve(__dirname, "..", "..");
const packageJson = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const extensionSource = readFileSync(path.join(root, "src", "extension.ts"), "utf8");

test("every contributed command is registered, and every registered command contributed", () => {
  const contributed = packageJson.contributes.commands.map((command: { command: string }) => command.command).sort();
  const registered = [...extensionSource.matchAll(/registerCommand\("([^"]+)"/g)].map((match) => match[1]).sort();
  assert.deepEqual(registered, contributed);
});

test("the entry point is the compiled extension", () => {
  assert.ok(existsSync(path.join(root, packageJson.main)), `${packageJson.main} exists after compiling`);
});

test("@types/vscode does not promise a newer API than engines.vscode allows", () => {
  const engine = packageJson.engines.vscode.replace(/^\^/, "");
  assert.equal(packageJson.devDependencies["@types/vscode"], engine);
});

test("the language client's id matches the trace setting it reads (<id>.trace.server)", () => {
  const id = /new LanguageClient\("([^"]+)"/.exec(extensionSource)?.[1];
  assert.ok(id && `${id}.trace.server` in packageJson.contributes.configuration.properties);
});
