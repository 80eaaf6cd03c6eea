/**
 * Diagnostics for the rate limiter against the proxy's throttle: reads the traces a first discovery run
 * writes with `BENCH_TRACE=<dir> npm run bench -- --scenario M --skip footprint,subscriptions,relay`
 * (`trace-<S>-agent.json`: each token grant of our limiter and each SDK send; `trace-<S>-proxy.json`: each
 * API Gateway request as the proxy saw it) and prints, per account-region, the lag from our grant to the
 * proxy's arrival, the proxy's bucket replayed over the arrivals (level before each request), and the
 * requests it answered 429 with their context. Usage: `npx tsx bench/trace.ts <dir> <scenario>`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface AgentEvent {
  kind: 'grant' | 'send';
  key: string;
  t: number;
  asked?: number;
  rate?: number;
}
interface ProxyCall {
  time: number;
  accountId: string;
  region: string;
  operation: string;
  outcome: string;
}

const RATE = 10;
const BURST = 40;

const [dir = '/tmp/trace0', scenario = 'M'] = process.argv.slice(2);
const agent = JSON.parse(readFileSync(join(dir, `trace-${scenario}-agent.json`), 'utf8')) as AgentEvent[];
const proxy = JSON.parse(readFileSync(join(dir, `trace-${scenario}-proxy.json`), 'utf8')) as ProxyCall[];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

const keys = [...new Set(proxy.map((c) => `${c.accountId}/${c.region}`))];
for (const key of keys) {
  const arrivals = proxy.filter((c) => `${c.accountId}/${c.region}` === key);
  const grants = agent.filter((e) => e.kind === 'grant' && e.key === key);
  const t0 = Math.min(arrivals[0]?.time ?? 0, grants[0]?.t ?? Number.POSITIVE_INFINITY);
  // replay the proxy's bucket (starts full at the first arrival)
  let tokens = BURST;
  let last = arrivals[0]!.time;
  const levels: number[] = [];
  for (const a of arrivals) {
    tokens = Math.min(BURST, tokens + ((a.time - last) / 1000) * RATE);
    last = a.time;
    levels.push(tokens);
    if (tokens >= 1) tokens -= 1;
  }
  const n = Math.min(arrivals.length, grants.length);
  const lags = Array.from({ length: n }, (_, i) => arrivals[i]!.time - grants[i]!.t);
  const waits = grants.map((g) => g.t - (g.asked ?? g.t));
  console.log(
    `${key}: ${arrivals.length} arrivals, ${grants.length} grants; first grant +${r1((grants[0]?.t ?? t0) - t0)} ms, first arrival +${r1(arrivals[0]!.time - t0)} ms`,
  );
  console.log(
    `  lag grant→arrival (ms, by order): first ${r1(lags[0] ?? 0)}, min ${r1(Math.min(...lags))}, p50 ${r1(pct(lags, 50))}, p99 ${r1(pct(lags, 99))}, max ${r1(Math.max(...lags))}`,
  );
  console.log(
    `  grants waited (ms): p50 ${r1(pct(waits, 50))}, max ${r1(Math.max(...waits))}; replayed bucket level: min ${r1(Math.min(...levels))}, levels < 1.5 on ${levels.filter((l) => l < 1.5).length} arrivals`,
  );
  // the 40th..: arrival schedule vs the ideal schedule anchored on the first arrival
  arrivals.forEach((a, i) => {
    if (a.outcome !== 'throttled') return;
    const g = grants[i];
    console.log(
      `  429 #${i} ${a.operation} at +${r1(a.time - t0)} ms: replayed level ${r1(levels[i]!)}, grant +${r1((g?.t ?? 0) - t0)} (lag ${r1(lags[i] ?? 0)}), rate ${g?.rate}; previous levels ${levels
        .slice(Math.max(0, i - 5), i)
        .map(r1)
        .join(' ')}`,
    );
  });
  // cumulative: how far ahead of the proxy's bucket our grants ran at the tightest point
  let worst = { i: -1, ahead: Number.NEGATIVE_INFINITY };
  for (let i = BURST; i < n; i++) {
    // earliest time the proxy would admit request i if every arrival kept it empty: a_0 + (i + 1 - BURST) / RATE
    const due = arrivals[0]!.time + ((i + 1 - BURST) / RATE) * 1000;
    const ahead = due - grants[i]!.t;
    if (ahead > worst.ahead) worst = { i, ahead };
  }
  console.log(
    `  grant most ahead of the proxy's schedule (anchored on the first arrival): #${worst.i} by ${r1(worst.ahead)} ms`,
  );
}
