/**
 * The reliability suite's figures. Each scenario file (its own vitest fork) adds its figures to a
 * {@link ScenarioReport} and flushes it in `afterAll`: the figures go to a JSON file in a directory
 * shared by the forks of one vitest run (named after the vitest main process, the forks' parent).
 * The fork that flushes last — all scenarios present — prints the table once (an exclusive-create
 * marker decides who), then removes the directory.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { markdownTable as table } from 'markdown-table';

/** The scenario files of the suite; the table is printed when all of them have reported. */
export const SCENARIOS = [
  'discovery',
  'subscriptions',
  'conflict409',
  'relay',
  'syncAppends',
  'revocations',
  'summarySize',
  'hostile',
  'authentication',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Figures {
  /** Faults the proxy injected (429, 5xx, resets) plus crashes injected by hooks. */
  faultsInjected: number;
  /** Operations the scenario attempted (runs, subscribes, commands, connections, inputs). */
  operationsAttempted: number;
  /** Operations that ended in the expected state (the rest is lost). */
  survived: number;
  /** API keys in API Gateway (unrestricted listing) at the end. */
  keysInApiGateway: number;
  /** ACTIVE subscriptions in the ledger at the end. */
  keysInLedger: number;
  /** Events the outbox holds for the scenario's runs × the clients that should see them. */
  eventsProduced: number;
  /** Events the clients received (live or by `sync`), counted once per client and seq. */
  eventsDelivered: number;
  /** Hostile inputs tried (fuzzed events, frames, tokens). */
  hostileInputs: number;
  /** Captured log lines scanned for secrets. */
  logLinesScanned: number;
  /** Secrets found in logs, ledger items or error messages (must be 0). */
  secretsLeaked: number;
}

const EMPTY: Figures = {
  faultsInjected: 0,
  operationsAttempted: 0,
  survived: 0,
  keysInApiGateway: 0,
  keysInLedger: 0,
  eventsProduced: 0,
  eventsDelivered: 0,
  hostileInputs: 0,
  logLinesScanned: 0,
  secretsLeaked: 0,
};

/** The console as it was when the suite loaded: the hygiene capture swallows later console output. */
const print = console.info.bind(console);

interface Stored {
  readonly scenario: ScenarioName;
  readonly seeds: Record<string, number>;
  readonly figures: Figures;
}

/** Directory shared by the forks of one vitest run. */
export function reportDir(): string {
  return join(tmpdir(), 'apigw-fed-reliability', String(process.ppid));
}

/** Figures of one scenario file. */
export class ScenarioReport {
  readonly figures: Figures = { ...EMPTY };
  readonly seeds: Record<string, number> = {};

  constructor(readonly scenario: ScenarioName) {}

  /** Records a seed and prints it, so a failure can be reproduced with the same seed. */
  seed(name: string, value: number): number {
    this.seeds[name] = value;
    print(`[reliability:${this.scenario}] seed ${name}=${value}`);
    return value;
  }

  add(figures: Partial<Figures>): void {
    for (const [key, value] of Object.entries(figures) as [keyof Figures, number][]) {
      this.figures[key] += value;
    }
  }

  /** Writes the figures; prints the table when every scenario has reported. Returns the table if printed. */
  flush(output: (text: string) => void = print): string | undefined {
    const dir = reportDir();
    mkdirSync(dir, { recursive: true });
    const stored: Stored = { scenario: this.scenario, seeds: this.seeds, figures: this.figures };
    writeFileSync(join(dir, `${this.scenario}.json`), JSON.stringify(stored));
    const present = readdirSync(dir).filter((f) => f.endsWith('.json'));
    if (!SCENARIOS.every((s) => present.includes(`${s}.json`))) return undefined;
    try {
      writeFileSync(join(dir, 'printed'), String(process.pid), { flag: 'wx' });
    } catch {
      return undefined; // another fork prints it
    }
    const rows = SCENARIOS.map((s) => JSON.parse(readFileSync(join(dir, `${s}.json`), 'utf8')) as Stored);
    const table = formatTable(rows);
    output(table);
    rmSync(dir, { recursive: true, force: true });
    return table;
  }
}

const COLUMNS: [keyof Figures, string][] = [
  ['faultsInjected', 'faults'],
  ['operationsAttempted', 'ops'],
  ['survived', 'survived'],
  ['keysInApiGateway', 'keys APIGW'],
  ['keysInLedger', 'keys ledger'],
  ['eventsProduced', 'events prod'],
  ['eventsDelivered', 'events deliv'],
  ['hostileInputs', 'hostile'],
  ['logLinesScanned', 'log lines'],
  ['secretsLeaked', 'leaks'],
];

/** The final table (markdown, by `markdown-table`): one row per scenario, a total row, and the verdict. */
export function formatTable(rows: readonly Stored[]): string {
  const total: Figures = { ...EMPTY };
  for (const row of rows) for (const [k] of COLUMNS) total[k] += row.figures[k];
  const grid = table(
    [
      ['scenario', ...COLUMNS.map(([, label]) => label)],
      ...rows.map((r) => [r.scenario, ...COLUMNS.map(([k]) => String(r.figures[k]))]),
      ['TOTAL', ...COLUMNS.map(([k]) => String(total[k]))],
    ],
    { align: ['l', ...COLUMNS.map(() => 'r')] },
  );
  const lost = total.operationsAttempted - total.survived;
  const verdict =
    lost === 0 &&
    total.secretsLeaked === 0 &&
    total.keysInApiGateway === total.keysInLedger &&
    total.eventsProduced === total.eventsDelivered
      ? 'nothing lost, nobody in'
      : `LOST ${lost} operations, ${total.eventsProduced - total.eventsDelivered} events, ${total.secretsLeaked} leaks, keys ${total.keysInApiGateway} vs ${total.keysInLedger}`;
  const seeds = rows
    .map(
      (r) =>
        `${r.scenario}: ${
          Object.entries(r.seeds)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || '-'
        }`,
    )
    .join('; ');
  return ['', 'Reliability and security suite', grid, `verdict: ${verdict}`, `seeds: ${seeds}`, ''].join(
    '\n',
  );
}
