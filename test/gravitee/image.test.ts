/**
 * What the container image runs: the Dockerfile's runtime stage is Node plus the bundle that
 * `gravitee/build.ts` writes, as a non-root user. No Docker engine here, so the test builds that same
 * bundle and runs it as the image's ENTRYPOINT does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBridge } from '../../gravitee/build.js';
import { freePort } from '../../local/ports.js';

const ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bridge-image-'));
  bundle = await buildBridge(join(dir, 'bridge.mjs'));
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(env: Record<string, string>, args: string[] = []) {
  const child: ChildProcess = spawn(process.execPath, [bundle, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('bridge container image', () => {
  it('runs Node and only the bundle, as a non-root user', () => {
    const dockerfile = readFileSync(join(ROOT, 'gravitee/Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^\nFROM node:22-alpine\n/);
    expect(runtime.match(/^COPY .*/gm)).toEqual([
      'COPY --from=build --chown=root:root /src/gravitee/dist/bridge.mjs /app/bridge.mjs',
    ]);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "\/app\/bridge.mjs"\]$/m);
    expect(dockerfile).toContain('RUN npx tsx gravitee/build.ts');
  });

  it('exits 2 naming the first missing variable when started without configuration', async () => {
    const started = run({});
    expect(await started.exited).toBe(2);
    expect(started.err()).toContain('gravitee_integration_connector_ws_endpoints_0: missing');
  });

  it('starts with the compose variables, keeps retrying both links, and exits 0 on SIGTERM', async () => {
    const nobody = await freePort();
    const started = run({
      gravitee_integration_connector_ws_endpoints_0: `http://127.0.0.1:${nobody}/integration-controller`,
      gravitee_integration_connector_ws_headers_0_name: 'Authorization',
      gravitee_integration_connector_ws_headers_0_value: 'bearer image-test-token',
      gravitee_integration_providers_0_type: 'aws-api-gateway',
      gravitee_integration_providers_0_integrationId: 'int-image',
      gravitee_integration_providers_0_configuration_accessKeyId: 'AKIAEXAMPLE',
      FED_RELAY_URL: `ws://127.0.0.1:${nobody}/local`,
      FED_RELAY_TOKEN: 'image-relay-token',
    });
    const deadline = Date.now() + 20_000;
    while (!/retrying in/.test(started.err()) || !/relay: .*retrying in/.test(started.err())) {
      if (Date.now() > deadline) throw new Error(`no retry logged:\n${started.err()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
    const log = started.err();
    expect(log).toContain('ignoring gravitee_integration_providers_0_configuration_accessKeyId');
    expect(log).toContain('SIGTERM received: closing both links');
    expect(log).not.toContain('image-test-token');
    expect(log).not.toContain('image-relay-token');
    expect(log).not.toContain('AKIAEXAMPLE');
  }, 30_000);
});
