#!/usr/bin/env node
// lint-openapi.mjs - lints an OpenAPI document with Redocly's linter
// (@redocly/openapi-core, the engine of `redocly lint`), offline.
//
//   node tests/deploy/lint-openapi.mjs docs/openapi.yaml
//
// Ruleset: Redocly's `recommended` (structural validity against the OpenAPI
// 3.1 schema, resolvable $refs, path parameters declared, unique operation
// ids, defined tags and security schemes, a 4xx response per operation, valid
// examples, ...) with every warning treated as an error. Exit 0 when clean,
// 1 with one line per problem on stderr, 2 on a usage error.

import { createConfig, lint } from "@redocly/openapi-core";

// Problems accepted on purpose, by rule and JSON pointer, each with its reason.
const ACCEPTED = [
  {
    rule: "no-unused-components",
    pointer: "#/components/responses/MethodNotAllowed",
    why: "405 answers a method a path does not list; OpenAPI has no place to reference it",
  },
  {
    rule: "operation-4xx-response",
    pointer: /^#\/paths\/~1(healthz|readyz|metrics)\/get\/responses$/,
    why: "/healthz, /readyz and /metrics have no client errors: 200 (or 503 for /readyz)",
  },
  {
    rule: "info-license",
    pointer: "#/info",
    why: "the project states its license in the repository, not in the API description",
  },
];

function accepted(p) {
  const ptr = (p.location && p.location[0] && p.location[0].pointer) || "";
  return ACCEPTED.some((a) =>
    a.rule === p.ruleId && (a.pointer instanceof RegExp ? a.pointer.test(ptr) : a.pointer === ptr));
}

async function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write("usage: lint-openapi.mjs FILE\n");
    return 2;
  }
  const config = await createConfig({ extends: ["recommended"] });
  let all;
  try {
    all = await lint({ ref: argv[0], config });
  } catch (e) {
    // an unreadable file or broken YAML: one short line, not the whole source
    process.stderr.write(`${argv[0]}: ${String((e && e.message) || e).split("\n")[0]}\n`);
    return 1;
  }
  const problems = all.filter((p) => !accepted(p));
  for (const p of problems) {
    const loc = (p.location && p.location[0]) || {};
    process.stderr.write(`${loc.pointer || argv[0]}: ${p.severity} ${p.ruleId}: ${p.message}\n`);
  }
  if (problems.length) {
    process.stderr.write(`lint-openapi: ${problems.length} problem(s)\n`);
    return 1;
  }
  process.stderr.write(`lint-openapi: ${argv[0]} is valid\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
