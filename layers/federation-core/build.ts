/**
 * Builds the federation core as a Lambda layer with esbuild (no Docker):
 *
 *   <outDir>/nodejs/node_modules/@apigw-federation/core/{index.js,index.js.map,package.json}
 *
 * The Lambda Node.js runtime puts `/opt/nodejs/node_modules` on `NODE_PATH`, so a function that keeps
 * `@apigw-federation/core` external resolves it from the layer. The bundle is CommonJS: `require` honours
 * `NODE_PATH`, ES module resolution does not (outside Lambda's own loader), and the functions are CommonJS too.
 * The AWS SDK v3 clients the core uses are bundled in (their ES module builds, so esbuild keeps only the
 * commands the core sends), pinned by `package-lock.json`: the functions run the SDK the tests ran, not
 * whichever version the Lambda runtime ships (see docs/deploy.md, "The AWS SDK"). The shared packages
 * (`SHARED_PACKAGES`: zod) ship in the layer as packages of their own, next to the core, so the core and
 * every function use one copy and a function that imports zod itself stays small (functions keep them
 * external too). Everything else (Powertools, ...) is bundled into the core.
 *
 * `npm run build` runs this file (output in `layers/federation-core/dist`); the CDK app calls
 * `buildCoreLayer` from the layer asset's local bundling hook, so `cdk synth` builds it as well.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** The package name functions import and keep external. */
export const CORE_PACKAGE = '@apigw-federation/core';

/**
 * Third-party packages the layer provides as packages of their own (bundled to one CommonJS file each),
 * shared by the core and the functions: both keep them external.
 */
export const SHARED_PACKAGES = ['zod'] as const;

/** Node.js version of the Lambda runtime the layer targets. */
export const LAYER_TARGET = 'node22';

const here = dirname(fileURLToPath(import.meta.url));

/** The layer's source entry point. */
export const CORE_ENTRY = join(here, 'src', 'index.ts');

/** Default output folder of `npm run build` (the folder whose contents become the layer zip). */
export const DEFAULT_LAYER_DIR = join(here, 'dist');

export interface LayerBuildResult {
  /** Folder to zip as the layer (holds `nodejs/`). */
  readonly outDir: string;
  /** The bundled `index.js`. */
  readonly bundleFile: string;
  /** Size of `index.js` in bytes. */
  readonly bundleBytes: number;
  /** Size of each shared package's bundle in bytes. */
  readonly sharedBytes: Record<string, number>;
}

const REPO_ROOT = resolve(here, '..', '..');

function writePackageJson(dir: string, name: string, version: string): void {
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name, version, private: true, main: 'index.js' }, null, 2)}\n`,
  );
}

/** Bundles an installed package into `<modulesDir>/<name>/index.js` (CommonJS, minified). */
function buildSharedPackage(modulesDir: string, name: string): number {
  const dir = join(modulesDir, ...name.split('/'));
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, 'index.js');
  buildSync({
    stdin: { contents: `export * from '${name}';`, resolveDir: REPO_ROOT, loader: 'js' },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: LAYER_TARGET,
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const installed = JSON.parse(
    readFileSync(join(REPO_ROOT, 'node_modules', ...name.split('/'), 'package.json'), 'utf8'),
  ) as { version: string };
  writePackageJson(dir, name, installed.version);
  return statSync(outfile).size;
}

/**
 * Bundles the core into `<outDir>/nodejs/node_modules/@apigw-federation/core`. Synchronous on purpose:
 * CDK's local bundling hook (`ILocalBundling.tryBundle`) is synchronous. Throws when esbuild fails.
 */
export function buildCoreLayer(outDir: string = DEFAULT_LAYER_DIR): LayerBuildResult {
  const modulesDir = join(outDir, 'nodejs', 'node_modules');
  const packageDir = join(modulesDir, ...CORE_PACKAGE.split('/'));
  rmSync(join(outDir, 'nodejs'), { recursive: true, force: true });
  mkdirSync(packageDir, { recursive: true });
  const bundleFile = join(packageDir, 'index.js');
  buildSync({
    entryPoints: [CORE_ENTRY],
    outfile: bundleFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: LAYER_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    // The shared packages ship next to the core; the SDK clients are bundled (ES module builds first,
    // so unused commands are dropped).
    external: [...SHARED_PACKAGES],
    mainFields: ['module', 'main'],
    legalComments: 'none',
    logLevel: 'warning',
    // Deterministic output: the asset hash of the layer is the hash of these bytes.
    absWorkingDir: REPO_ROOT,
  });
  writePackageJson(packageDir, CORE_PACKAGE, '0.1.0');
  const sharedBytes: Record<string, number> = {};
  for (const name of SHARED_PACKAGES) sharedBytes[name] = buildSharedPackage(modulesDir, name);
  return { outDir, bundleFile, bundleBytes: statSync(bundleFile).size, sharedBytes };
}

// `npm run build` / `tsx layers/federation-core/build.ts [outDir]`
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = buildCoreLayer(process.argv[2] ? resolve(process.argv[2]) : DEFAULT_LAYER_DIR);
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(`layer built: ${result.bundleFile} (${kib(result.bundleBytes)})`);
  for (const [name, bytes] of Object.entries(result.sharedBytes))
    console.log(`  shared package ${name}: ${kib(bytes)}`);
}
