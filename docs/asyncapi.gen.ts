/**
 * Writes docs/asyncapi.yaml from the protocol's zod schemas: `npx tsx docs/asyncapi.gen.ts`.
 * With `--check`, exits 1 when the committed file differs instead of writing it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderAsyncApiYaml } from '../layers/federation-core/src/protocol/asyncapi.js';

const target = fileURLToPath(new URL('./asyncapi.yaml', import.meta.url));
const yaml = renderAsyncApiYaml();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== yaml) {
    process.stderr.write('docs/asyncapi.yaml is out of date: run npx tsx docs/asyncapi.gen.ts\n');
    process.exit(1);
  }
} else {
  writeFileSync(target, yaml);
  process.stdout.write(`wrote ${target}\n`);
}
