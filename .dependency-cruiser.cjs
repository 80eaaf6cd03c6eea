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
 *
 * And the tools around it (docs/architecture.md, "Around the core"):
 * - The local runtime (local/) and the operator commands (cli/) reach the core through its entry only.
 * - The reference control-plane client (client/) knows the relay protocol (src/protocol/) and nothing
 *   else of the repository: it is what a control plane implements.
 * - The Gravitee bridge (gravitee/, its own container image) uses the client and the core's protocol
 *   module only: no other core file, nor the local runtime, the emulator, the CDK app or tests.
 * - Nothing in the core imports any of them (core-stands-alone).
 */
const CORE = '^layers/federation-core/src/';
const FOUNDATION = `${CORE}((aws|config|ledger|protocol|publishing|ports|secrets)/|[^/]+[.]ts$)`;
const ENTRY = `${CORE}index[.]ts$`;
const PROTOCOL = `${CORE}protocol/`;
/** Every top-level folder of the repository with code in it. */
const REPOSITORY = '^(layers|functions|infra|emulator|local|cli|client|gravitee|test|bench|docs|bin)/';

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
      to: { path: '^(infra|emulator|local|test|bench|client|cli|gravitee|functions|docs)/' },
    },
    {
      name: 'local-runtime-and-cli-use-the-core-entry',
      comment:
        'The local runtime (local/) and the operator commands (cli/) import the core through its entry ' +
        '(`@apigw-federation/core` or layers/federation-core/src/index.ts) only, as the handlers do.',
      severity: 'error',
      from: { path: '^(local|cli)/' },
      to: { path: CORE, pathNot: ENTRY },
    },
    {
      name: 'client-knows-only-the-protocol',
      comment:
        'The reference control-plane client (client/) imports the relay protocol (core src/protocol/) and ' +
        'its own files only: a control plane knows the protocol, not the agent.',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: REPOSITORY, pathNot: ['^client/', PROTOCOL] },
    },
    {
      name: 'bridge-uses-the-client-and-the-protocol',
      comment:
        'The Gravitee bridge (gravitee/, bundled alone into its container image) imports its own files, the ' +
        'control-plane client (client/) and the core protocol module (src/protocol/) only: nothing else ' +
        'of the core, nor the local runtime, the emulator, the CDK app or tests.',
      severity: 'error',
      from: { path: '^gravitee/' },
      to: { path: REPOSITORY, pathNot: ['^gravitee/', '^client/', PROTOCOL] },
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
