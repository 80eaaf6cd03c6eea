/**
 * `npm start`'s runtime as a child process (`tsx local/start.ts`, the tsx `npx tsx` runs: npm itself would
 * turn the child's exit code into "killed by SIGTERM"), in its own process group so a failed test can still
 * take down tsx, node and a moto it started together.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface RuntimeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

/** The test process's environment without the runtime's own settings, plus `env`. */
export function runtimeEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out = { ...process.env };
  for (const name of [
    'AWS_ENDPOINT_URL',
    'FED_RELAY_TOKEN',
    'FED_RELAY_PORT',
    'FED_LAMBDA_PORT',
    'FED_AWS_PORT',
    'FED_MOTO_FIXES',
    'FED_CONFIG',
    'FED_CONFIG_FILE',
    'FED_TABLE_NAME',
  ]) {
    delete out[name];
  }
  return { ...out, ...env };
}

export function startRuntimeProcess(args: string[], env: NodeJS.ProcessEnv = runtimeEnv()): RuntimeProcess {
  const child = spawn(resolve(ROOT, 'node_modules/.bin/tsx'), ['local/start.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Waits until the runtime's stdout matches `pattern`; throws with its output when it exits or times out. */
export async function waitForOutput(
  started: RuntimeProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void started.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    const match = started.stdout().match(pattern);
    if (match) return match;
    if (exited) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `runtime did not print ${pattern} (exited: ${exited})\nstdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`,
  );
}

/** SIGTERM and the exit; SIGKILL to the whole process group when it does not exit within 10 s. */
export async function stopRuntimeProcess(started: RuntimeProcess | undefined) {
  const pid = started?.child.pid;
  if (!started || pid === undefined) return undefined;
  if (started.child.exitCode === null && started.child.signalCode === null) {
    started.child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), 10_000).unref());
    if ((await Promise.race([started.exited, timeout])) === 'timeout') {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  return started.exited;
}
