/**
 * Secrets hygiene: captures everything a scenario file logs (Powertools writes JSON lines to
 * `process.stdout`/`process.stderr` through its own Console; other code uses the global `console`), and
 * checks that no secret it was told about (API key values, relay tokens) appears in a log line, a
 * ledger item or an error message.
 */
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { LedgerTable } from '../../layers/federation-core/src/index.js';

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;

export interface Leak {
  readonly where: 'log' | 'ledger' | 'error';
  /** The first characters of the secret only, never the whole value. */
  readonly secretPrefix: string;
  readonly excerpt: string;
}

export class SecretsHygiene {
  private readonly chunks: string[] = [];
  private readonly errors: string[] = [];
  private readonly secrets = new Set<string>();
  private restore: (() => void) | undefined;

  /** Starts capturing stdout, stderr and the console. Output is swallowed unless RELIABILITY_VERBOSE is set. */
  start(): this {
    const verbose = Boolean(process.env.RELIABILITY_VERBOSE);
    const stdoutWrite = process.stdout.write;
    const stderrWrite = process.stderr.write;
    const originals = CONSOLE_METHODS.map((m) => [m, console[m]] as const);
    const wrapWrite = (original: typeof process.stdout.write) =>
      ((chunk: unknown, ...rest: unknown[]) => {
        this.chunks.push(
          typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'),
        );
        if (verbose) return original.call(process.stdout, chunk as string, ...(rest as []));
        const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = wrapWrite(stdoutWrite);
    process.stderr.write = wrapWrite(stderrWrite);
    for (const [method, original] of originals) {
      console[method] = (...args: unknown[]) => {
        this.chunks.push(`${args.map((a) => (typeof a === 'string' ? a : safeJson(a))).join(' ')}\n`);
        if (verbose) original(...args);
      };
    }
    this.restore = () => {
      process.stdout.write = stdoutWrite;
      process.stderr.write = stderrWrite;
      for (const [method, original] of originals) console[method] = original;
    };
    return this;
  }

  stop(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** A value that must never appear anywhere (an API key value, a relay token). */
  secret(value: string | undefined): void {
    if (value && value.length >= 8) this.secrets.add(value);
  }

  /** An error (or error message / reply) a caller saw: scanned too. */
  error(error: unknown): void {
    if (error instanceof Error) {
      this.errors.push(`${error.name}: ${error.message} ${safeJson(error)}`);
      if (error.cause !== undefined) this.error(error.cause);
    } else {
      this.errors.push(typeof error === 'string' ? error : safeJson(error));
    }
  }

  get secretCount(): number {
    return this.secrets.size;
  }

  /** Captured log lines so far. */
  lines(): string[] {
    return this.chunks
      .join('')
      .split('\n')
      .filter((l) => l.trim() !== '');
  }

  /** Every leak of a known secret in the logs, the ledger table and the recorded errors. */
  async leaks(ledgers: readonly LedgerTable[] = []): Promise<Leak[]> {
    const haystacks: { where: Leak['where']; text: string }[] = [
      ...this.lines().map((text) => ({ where: 'log' as const, text })),
      ...this.errors.map((text) => ({ where: 'error' as const, text })),
    ];
    for (const ledger of ledgers) {
      for (const item of await scanAll(ledger)) haystacks.push({ where: 'ledger', text: safeJson(item) });
    }
    const leaks: Leak[] = [];
    for (const secret of this.secrets) {
      for (const { where, text } of haystacks) {
        const at = text.indexOf(secret);
        if (at >= 0) {
          leaks.push({
            where,
            secretPrefix: `${secret.slice(0, 4)}…`,
            excerpt: text.slice(Math.max(0, at - 80), at).concat('<SECRET>'),
          });
        }
      }
    }
    return leaks;
  }
}

async function scanAll(ledger: LedgerTable): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page: ScanCommandOutput = await ledger.client.send(
      new ScanCommand({ TableName: ledger.tableName, ExclusiveStartKey: start }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * The last check of a scenario file against the agent: once it is idle, its handlers' errors join the
 * scan, which covers the captured log lines, every item of its ledger and those errors; the row gets
 * the lines scanned and the leaks found. Returns the leaks (the caller expects none).
 */
export async function scanAgent(
  agent: {
    idle(): Promise<void>;
    readonly handlerErrors: readonly { error: unknown }[];
    readonly ledger: LedgerTable;
  },
  hygiene: SecretsHygiene,
  report: { add(figures: { logLinesScanned: number; secretsLeaked: number }): void },
): Promise<Leak[]> {
  await agent.idle();
  for (const { error } of agent.handlerErrors) hygiene.error(error);
  const leaks = await hygiene.leaks([agent.ledger]);
  report.add({ logLinesScanned: hygiene.lines().length, secretsLeaked: leaks.length });
  return leaks;
}
