#!/usr/bin/env node
// Generate package.json `contributes.configuration` from the server's settings schema (`atlas-ls config schema`),
// so the VS Code settings mirror the server's exactly. `--check` compares instead of writing (exit 1 when stale).
//
//   node scripts/sync-schema.mjs [--check] [--schema FILE | --python PYTHON]
//
// Without --schema it runs `PYTHON -m atlas_ls config schema`, PYTHON being --python, $ATLAS_PYTHON, the repository's
// .venv/bin/python, or `atlas-ls config schema` from PATH when none of those exists.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const extensionRoot = path.resolve(here, "..");
const packageJsonPath = path.join(extensionRoot, "package.json");

// Settings of the extension itself (how to start the server); they are not sent to the server.
const EXTENSION_SETTINGS = {
  "atlas.serverCommand": {
    type: ["array", "string", "null"],
    items: { type: "string" },
    default: null,
    markdownDescription:
      "Command that starts the server, as an array (`[\"/path/to/atlas-ls\"]`) or one command line. " +
      "`${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~` are expanded. " +
      "Takes precedence over `#atlas.pythonPath#`.",
  },
  "atlas.pythonPath": {
    type: ["string", "null"],
    default: null,
    markdownDescription:
      "Python interpreter with atlas-ls installed; the server starts as `python -m atlas_ls`. " +
      "When neither this nor `#atlas.serverCommand#` is set, `atlas-ls` is looked up on PATH.",
  },
  "atlas.trace.server": {
    type: "string",
    enum: ["off", "messages", "verbose"],
    default: "off",
    description: "Log the LSP messages between VS Code and the server to the ATLAS output.",
  },
};

// Server names are snake_case; VS Code's are camelCase. Only `_` + lowercase letter is folded, so the server's own
// camelCase-to-snake rule (an upper-case letter becomes `_` + lower-case) maps every name back exactly.
export function vscodeName(serverKey) {
  return serverKey.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
}

const SCHEMA_FIELDS = ["type", "default", "enum", "minimum", "maximum", "items", "minItems", "maxItems"];

export function configurationProperties(schema) {
  const properties = {};
  let order = 0;
  for (const [key, spec] of Object.entries(EXTENSION_SETTINGS)) {
    properties[key] = { ...spec, order: order++ };
  }
  for (const [key, spec] of Object.entries(schema.properties ?? {})) {
    const property = {};
    for (const field of SCHEMA_FIELDS) {
      if (field in spec) property[field] = spec[field];
    }
    property.description = spec.description;
    property.order = order++;
    properties[vscodeName(key)] = property;
  }
  return properties;
}

function argument(args, name) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

function readSchema(args) {
  const file = argument(args, "--schema");
  if (file) return JSON.parse(readFileSync(file, "utf8"));
  const venvPython = path.resolve(extensionRoot, "..", ".venv", "bin", "python");
  const python = argument(args, "--python") ?? process.env.ATLAS_PYTHON ?? (existsSync(venvPython) ? venvPython : null);
  const [command, commandArgs] = python
    ? [python, ["-m", "atlas_ls", "config", "schema"]]
    : ["atlas-ls", ["config", "schema"]];
  return JSON.parse(execFileSync(command, commandArgs, { encoding: "utf8" }));
}

function main(args) {
  const pkg = JSON.parse(readFileSync(packageJsonPath, "utf8"));
  const wanted = configurationProperties(readSchema(args));
  const current = pkg.contributes.configuration.properties;
  if (args.includes("--check")) {
    if (JSON.stringify(current) === JSON.stringify(wanted)) {
      console.log("package.json settings match the server's schema");
      return 0;
    }
    const stale = [...new Set([...Object.keys(current), ...Object.keys(wanted)])]
      .filter((key) => JSON.stringify(current[key]) !== JSON.stringify(wanted[key]));
    console.error(`package.json settings differ from the server's schema (${stale.join(", ")}); ` +
      "run `npm run sync-schema` in vscode-extension/");
    return 1;
  }
  pkg.contributes.configuration.properties = wanted;
  writeFileSync(packageJsonPath, JSON.stringify(pkg, null, 2) + "\n");
  console.log(`wrote ${Object.keys(wanted).length} settings to ${packageJsonPath}`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
