/**
 * The layering rule of the core (docs/architecture.md), checked by `npm run deps` (part of `npm test`).
 *
 * - Foundation: layers/federation-core/src/{aws,config,ledger,protocol,publishing,ports,secrets}/ and
 *   the files at src/ itself (errors, once, pool, logger, metrics, model). It imports no capability.
 * - Capabilities: every other folder of src/ (discovery, subscriptions, relay, and later ones). A
 *   capability imports foundation modules and its own files, never another capability.
 * - The composition root (src/composition/) wires capabilities together; only the entry (src/index.ts)
 *   imports it.
 * - Handlers (functions/) reach the core through its entry (`@apigw-federation/core`) only.
 */
const CORE = '^layers/federation-core/src/';
const FOUNDATION = `${CORE}((aws|config|ledger|protocol|publishing|ports|secrets)/|[^/]+[.]ts$)`;
const ENTRY = `${CORE}index[.]ts$`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'foundation-imports-no-capability',
      comment:
        'A foundation module (outbox, publishing, errors, pooling, once, ledger, protocol, ports, ...) must not import a ' +
        'capability or the composition root: move the shared part into the foundation, or add a port the root wires.',
      severity: 'error',
      from: { path: FOUNDATION, pathNot: ENTRY },
      to: { path: `${CORE}[^/]+/`, pathNot: FOUNDATION },
    },
    {
      name: 'capabilities-never-import-each-other',
      comment:
        'A capability (discovery, subscriptions, relay, ...) must not import another capability or the composition ' +
        'root: reach the other one through a port in src/ports/ that src/composition/root.ts wires.',
      severity: 'error',
      from: { path: `${CORE}([^/]+)/`, pathNot: [FOUNDATION, `${CORE}composition/`] },
      to: { path: `${CORE}[^/]+/`, pathNot: [FOUNDATION, `${CORE}$1/`] },
    },
    {
      name: 'handlers-use-the-core-entry',
      comment: 'A handler imports the core through `@apigw-federation/core` only, never a file inside it.',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: CORE, pathNot: ENTRY },
    },
    {
      name: 'core-stands-alone',
      comment:
        'The core is shipped as a Lambda layer: it must not import the CDK app, the emulator, tests or tools.',
      severity: 'error',
      from: { path: CORE },
      to: { path: '^(infra|emulator|local|test|bench|client|cli|functions|docs)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
