/**
 * moto server lifecycle: find (or install) a Python that has moto, start a moto server on a loopback
 * port, wait until it answers, reset its state, stop it.
 *
 * Used by the vitest harness (`test/support/emulator.ts`), the benchmark and the local runtime.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Repository root (this file lives in `<root>/emulator`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The repo-local, git-ignored virtual environment used when the system python has no moto
 * (`MOTO_VENV_DIR` overrides it).
 */
export const VENV_DIR = process.env.MOTO_VENV_DIR
  ? resolve(process.env.MOTO_VENV_DIR)
  : resolve(REPO_ROOT, '.venv');
const VENV_PYTHON = resolve(VENV_DIR, 'bin', 'python');

/** What to install, said once, used by every failure message. */
export const MOTO_INSTALL_HINT =
  "moto is required to run the AWS emulator. Install Python >= 3.9 and then run: pip install 'moto[server]' " +
  "(or let the harness do it: python3 -m venv .venv && .venv/bin/pip install 'moto[server]').";

export interface MotoServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  /** Kills the server and resolves when the process has exited. Idempotent. */
  stop(): Promise<void>;
}

async function canImportMoto(python: string): Promise<boolean> {
  try {
    await execFileAsync(python, ['-c', 'import moto, moto.server'], { timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

let ensured: Promise<{ python: string }> | undefined;

/**
 * Finds a Python interpreter that can `import moto` — `python3` on PATH, else the repo-local
 * `.venv/bin/python` — and installs moto into `.venv` when neither has it.
 * Throws an Error that says exactly what to install when that is impossible.
 * The result is memoised for the life of the process.
 */
export function ensureMoto(): Promise<{ python: string }> {
  ensured ??= findOrInstallMoto().catch((error: unknown) => {
    ensured = undefined;
    throw error;
  });
  return ensured;
}

async function findOrInstallMoto(): Promise<{ python: string }> {
  const override = process.env.MOTO_PYTHON;
  const candidates = [override, 'python3', existsSync(VENV_PYTHON) ? VENV_PYTHON : undefined].filter(
    (c): c is string => typeof c === 'string' && c.length > 0,
  );
  for (const python of candidates) {
    if (await canImportMoto(python)) return { python };
  }
  const attempts: string[] = [];
  try {
    if (!existsSync(VENV_PYTHON)) {
      await execFileAsync('python3', ['-m', 'venv', VENV_DIR], { timeout: 120_000 });
    }
    await execFileAsync(resolve(VENV_DIR, 'bin', 'pip'), ['install', '--quiet', 'moto[server]'], {
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (await canImportMoto(VENV_PYTHON)) return { python: VENV_PYTHON };
    attempts.push('moto was installed into .venv but cannot be imported');
  } catch (error) {
    attempts.push(`installing into .venv failed: ${firstLine(error)}`);
  }
  throw new Error(`${MOTO_INSTALL_HINT}\n(${attempts.join('; ')})`);
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Asks the kernel for a free loopback TCP port (binds port 0, reads it, closes). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
function portInUse(port: number): Promise<boolean> {
  return new Promise((resolveInUse) => {
    const server = createServer();
    server.once('error', () => resolveInUse(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveInUse(false)));
  });
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

let signalHookInstalled = false;

function installExitHook(killOnSignal: boolean): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: a plain kill is all we can do, and all that is needed.
    process.once('exit', () => {
      for (const child of liveChildren) child.kill('SIGKILL');
    });
  }
  if (!killOnSignal || signalHookInstalled) return;
  signalHookInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of liveChildren) child.kill('SIGKILL');
      // Re-raise only when nobody else handles the signal (a runtime with its own graceful shutdown).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * `python -m moto.server`, minus werkzeug's per-request access log (logging every request costs moto
 * about a fifth of its throughput, and nobody reads it; start-up errors are still printed), with two
 * fixes of moto's DynamoDB transactions (`test/emulator/moto.test.ts`):
 * - isolation: moto answers requests on many threads, and rolls a cancelled `TransactWriteItems` back by
 *   putting back a copy of the whole table taken when it began, so a write another request committed
 *   meanwhile was undone (and copying a table another thread changes fails with a 500). DynamoDB
 *   isolates transactions; here DynamoDB requests run one at a time. That also makes every write atomic
 *   per item, as on AWS (moto reads, changes and stores an item without a lock, so two concurrent
 *   updates of one counter could lose one).
 * - speed: that copy was taken once per item of the call (all of the same state, the last one kept),
 *   so a transaction cost time in proportion to the table's size times its items (seconds for the
 *   outbox's 50-event appends on a ledger of thousands of items). The rollback now restores copies of
 *   the items the transaction names, taken before it runs: the same end state, at the cost of those items.
 */
const MOTO_BOOT = `
import copy, logging, sys, threading
import moto.dynamodb.models as ddb
import moto.dynamodb.responses as ddb_responses
from moto.dynamodb.models.dynamo_type import DynamoType
logging.getLogger('werkzeug').setLevel(logging.ERROR)
_local = threading.local()
class _NoTableCopy:
    # Inside TransactWriteItems, moto's whole-table backup is replaced by the items' own (below).
    def __getattr__(self, name):
        return getattr(copy, name)
    def deepcopy(self, obj, memo=None):
        if getattr(_local, 'in_transaction', False) and isinstance(obj, ddb.Table):
            return obj
        return copy.deepcopy(obj, memo)
def _item_keys(backend, transact_items):
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        table = backend.tables.get(op.get('TableName'))
        if table is None:
            continue
        key = op.get('Item') if op_type == 'Put' else op.get('Key')
        if not key or table.hash_key_attr not in key:
            continue
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in (key or {}) else None
        yield table, hash_key, range_key
def _transact_write_items(self, transact_items):
    saved = []
    for table, hash_key, range_key in _item_keys(self, transact_items):
        before = table.get_item(hash_key, range_key) if (range_key is not None or not table.range_key_attr) else None
        saved.append((table, hash_key, range_key, copy.deepcopy(before)))
    _local.in_transaction = True
    try:
        return _transact(self, transact_items)
    except Exception:
        for table, hash_key, range_key, before in reversed(saved):
            if range_key is not None:
                if before is None:
                    table.items.get(hash_key, {}).pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        raise
    finally:
        _local.in_transaction = False
_serial = threading.RLock()
def _one_at_a_time(self):
    with _serial:
        return _call_action(self)
if hasattr(ddb_responses, 'DynamoHandler'):
    _call_action = ddb_responses.DynamoHandler.call_action
    ddb_responses.DynamoHandler.call_action = _one_at_a_time
if hasattr(ddb, 'Table') and getattr(ddb, 'copy', None) is copy:
    _transact = ddb.DynamoDBBackend.transact_write_items
    ddb.copy = _NoTableCopy()
    ddb.DynamoDBBackend.transact_write_items = _transact_write_items
from moto.server import main
main(sys.argv[1:])
`;

export interface StartMotoOptions {
  /** Port to listen on; a free one when omitted. */
  port?: number;
  /** How long to wait for the server to answer, default 60 s. */
  startTimeoutMs?: number;
  /**
   * Kill moto at once on SIGINT/SIGTERM (default true). A caller with its own graceful shutdown
   * (the local runtime, whose `$disconnect` handlers still write to moto) turns it off and calls
   * `stop()` itself; moto is still killed when the process exits.
   */
  killOnSignal?: boolean;
}

/**
 * Starts a moto server (`python -m moto.server -H 127.0.0.1 -p <port>`, quiet) and resolves once
 * `GET /moto-api/` answers.
 * Rejects clearly when the port is taken or the server dies during start-up.
 */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const { python } = await ensureMoto();
  const port = options.port ?? (await freePort());
  if (options.port !== undefined && (await portInUse(port))) {
    throw new Error(`cannot start moto: port ${port} on 127.0.0.1 is already in use`);
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(python, ['-c', MOTO_BOOT, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  installExitHook(options.killOnSignal ?? true);
  liveChildren.add(child);

  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    // keep only the tail: moto logs every request here
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => {
      liveChildren.delete(child);
      resolveExit(code);
    });
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const stop = async (): Promise<void> => {
    if (hasExited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (hasExited) {
      const inUse = /address already in use|port .* is in use/i.test(stderr);
      throw new Error(
        inUse
          ? `cannot start moto: port ${port} on 127.0.0.1 is already in use`
          : `moto server exited during start-up (exit code ${await exited}): ${stderr.trim().slice(-1500)}`,
      );
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return { endpoint, port, stop };
    } catch {
      // not answering yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`moto server on ${endpoint} did not answer within the start timeout: ${stderr.trim()}`);
}

/** Clears all state of a moto server (`POST /moto-api/reset`). */
export async function resetMoto(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint.replace(/\/$/, '')}/moto-api/reset`, { method: 'POST' });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
}
