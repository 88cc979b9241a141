import assert from "node:assert/strict";
import { test } from "node:test";
import {
  LaunchSettingError,
  expandVariables,
  resolveServerLaunch,
  splitCommandLine,
  startFailureMessage,
} from "../src/launch";

const context = { workspaceFolder: "/ws/project", home: "/home/ada", env: { VENV: "/opt/venv" } };

test("serverCommand as an array is used as given, program first", () => {
  const launch = resolveServerLaunch({ serverCommand: ["/opt/atlas/bin/atlas-ls", "--stdio"], pythonPath: "/x/python" }, context);
  assert.deepEqual(launch, { command: "/opt/atlas/bin/atlas-ls", args: ["--stdio"], source: "atlas.serverCommand" });
});

test("serverCommand as a string is split like a shell command line", () => {
  const launch = resolveServerLaunch({ serverCommand: `"/path with space/python" -m atlas_ls` }, context);
  assert.deepEqual(launch, { command: "/path with space/python", args: ["-m", "atlas_ls"], source: "atlas.serverCommand" });
});

test("pythonPath runs the server as a module of that interpreter", () => {
  const launch = resolveServerLaunch({ serverCommand: [], pythonPath: "${workspaceFolder}/.venv/bin/python" }, context);
  assert.deepEqual(launch, { command: "/ws/project/.venv/bin/python", args: ["-m", "atlas_ls"], source: "atlas.pythonPath" });
});

test("without either setting the server is atlas-ls on PATH", () => {
  for (const settings of [{}, { serverCommand: null, pythonPath: null }, { serverCommand: "  ", pythonPath: "" }]) {
    assert.deepEqual(resolveServerLaunch(settings, context), { command: "atlas-ls", args: [], source: "default" });
  }
});

test("variables and ~ are expanded in every word", () => {
  const launch = resolveServerLaunch({ serverCommand: ["~/bin/atlas-ls", "--log=${userHome}/a.log", "${env:VENV}/x", "${env:NOPE}"] }, context);
  assert.deepEqual([launch.command, ...launch.args], ["/home/ada/bin/atlas-ls", "--log=/home/ada/a.log", "/opt/venv/x", ""]);
  assert.equal(expandVariables("a~b", context), "a~b");
});

test("${workspaceFolder} without an open folder is a clear error", () => {
  assert.throws(
    () => resolveServerLaunch({ pythonPath: "${workspaceFolder}/python" }, { ...context, workspaceFolder: undefined }),
    (error: Error) => error instanceof LaunchSettingError && /no folder is open/.test(error.message),
  );
});

test("wrongly typed settings are rejected with the setting's name and what it accepts", () => {
  for (const bad of [42, { cmd: "x" }, ["atlas-ls", 3], [""]]) {
    assert.throws(
      () => resolveServerLaunch({ serverCommand: bad }, context),
      (error: Error) => error instanceof LaunchSettingError && /atlas\.serverCommand must be an array of strings/.test(error.message),
    );
  }
  assert.throws(() => resolveServerLaunch({ pythonPath: ["python"] }, context), /atlas\.pythonPath must be a path/);
});

test("command lines: quotes group, backslash escapes, unclosed quotes are errors", () => {
  assert.deepEqual(splitCommandLine(`a 'b c'  "d \\"e\\"" f\\ g ''`), ["a", "b c", 'd "e"', "f g", ""]);
  assert.deepEqual(splitCommandLine(""), []);
  assert.throws(() => splitCommandLine(`python "-m atlas_ls`), /unclosed " quote/);
});

test("a start failure says what was run and what to change", () => {
  const byDefault = startFailureMessage({ command: "atlas-ls", args: [], source: "default" }, new Error("spawn atlas-ls ENOENT"));
  assert.match(byDefault, /\(atlas-ls\): spawn atlas-ls ENOENT/);
  assert.match(byDefault, /atlas\.pythonPath/);
  const fromPython = startFailureMessage({ command: "/py", args: ["-m", "atlas_ls"], source: "atlas.pythonPath" }, "exit 1");
  assert.match(fromPython, /\(\/py -m atlas_ls\): exit 1\. Check atlas\.pythonPath\./);
});
