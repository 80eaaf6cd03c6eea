/** Figures, the markdown table, machine facts and the results file of a benchmark run. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { markdownTable as table } from 'markdown-table';

export interface Figure {
  /** Stable name, e.g. `M discovery first run: calls / minimum`. */
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** Human-readable target (`≤ 1.10`), or undefined for figures reported without one. */
  readonly target?: string;
  /** Whether the value meets the target; null when there is no target. */
  readonly pass: boolean | null;
  /** What the figure is made of (shown in the table's last column). */
  readonly note?: string;
}

export type Comparison = '<=' | '>=' | '==';

/** A figure with a numeric target. NaN never passes. */
export function figure(
  name: string,
  value: number,
  unit: string,
  target?: { op: Comparison; value: number },
  note?: string,
): Figure {
  if (!target) return { name, value, unit, pass: null, ...(note ? { note } : {}) };
  const pass =
    !Number.isNaN(value) &&
    (target.op === '<='
      ? value <= target.value
      : target.op === '>='
        ? value >= target.value
        : value === target.value);
  const symbol = target.op === '<=' ? '≤' : target.op === '>=' ? '≥' : '=';
  return { name, value, unit, target: `${symbol} ${target.value}`, pass, ...(note ? { note } : {}) };
}

function formatValue(f: Figure): string {
  if (Number.isNaN(f.value)) return 'n/a';
  const v =
    Math.abs(f.value) >= 1000
      ? f.value.toLocaleString('en-US', { maximumFractionDigits: 2 })
      : String(f.value);
  return f.unit === 'ratio' || f.unit === 'count' ? v : `${v} ${f.unit}`;
}

/** The figures as a markdown table (figure, value, target, pass/fail, note), by `markdown-table`. */
export function markdownTable(figures: readonly Figure[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = figures.map((f) => [
    cell(f.name),
    cell(formatValue(f)),
    cell(f.target ?? ''),
    f.pass === null ? '' : f.pass ? 'pass' : '**fail**',
    cell(f.note ?? ''),
  ]);
  return table([['figure', 'value', 'target', 'result', 'how'], ...rows], {
    align: ['l', 'r', 'l', 'l', 'l'],
    alignDelimiters: false,
  });
}

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The commit the tree is at, with `-dirty` when it has uncommitted changes. */
export function gitCommit(cwd: string): string {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd,
      encoding: 'utf8',
    }).trim();
    return status ? `${commit}-dirty` : commit;
  } catch {
    return 'unknown';
  }
}

/** `YYYY-MM-DDTHH-MM-SS` (UTC) of `date`: the results file name. */
export function resultStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, '')
    .replaceAll(':', '-');
}

export interface ResultsFile {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly scenario: unknown;
  readonly machine: Machine;
  readonly commit: string;
  readonly figures: readonly Figure[];
  readonly details: unknown;
}

/** Writes `bench/results/<stamp>.json` and returns its path. */
export function writeResults(dir: string, stamp: string, results: ResultsFile): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(results, (_k, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2)}\n`,
  );
  return file;
}
