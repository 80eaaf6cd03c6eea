/**
 * The proxy's call log: every signed request that reaches the proxy, whatever the proxy did with it, with
 * its service, operation and the account-region it is attributed to. Tests use it to assert how many AWS
 * calls the code under test made (and where), which moto itself cannot tell.
 */

export type CallOutcome = 'forwarded' | 'refused' | 'fault' | 'throttled' | 'rejected';

/** One request as the proxy saw it. */
export interface ProxiedCall {
  readonly seq: number;
  readonly time: number;
  readonly service: string;
  readonly operation: string;
  readonly method: string;
  /** Path without query string, still percent-encoded. */
  readonly path: string;
  readonly accountId: string;
  readonly region: string;
  readonly accessKeyId: string;
  /** What the proxy did with it; `rejected` = refused by the paging emulation (bad limit/position). */
  outcome: CallOutcome;
  /** HTTP status sent to the client (0 for a reset connection or while in flight). */
  status: number;
}

export interface CallFilter {
  service?: string;
  operation?: string;
  accountId?: string;
  region?: string;
  outcome?: CallOutcome | readonly CallOutcome[];
}

/** Read API over the recorded calls. Every request that reached the proxy is recorded, whatever its outcome. */
export interface CallLog {
  /** Number of recorded calls matching the filter (all when omitted). */
  count(filter?: CallFilter): number;
  /** Shorthand for `count({ ...filter, operation })`. */
  countOf(operation: string, filter?: CallFilter): number;
  /** Counts by operation name, e.g. `{ GetRestApis: 2, GetStages: 600 }`. */
  byOperation(filter?: CallFilter): Record<string, number>;
  /** Counts by `"<accountId>/<region>"`. */
  byAccountRegion(filter?: CallFilter): Record<string, number>;
  /** The matching calls, oldest first. */
  list(filter?: CallFilter): readonly ProxiedCall[];
}

function matches(call: ProxiedCall, filter: CallFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.service !== undefined && call.service !== filter.service) return false;
  if (filter.operation !== undefined && call.operation !== filter.operation) return false;
  if (filter.accountId !== undefined && call.accountId !== filter.accountId) return false;
  if (filter.region !== undefined && call.region !== filter.region) return false;
  if (filter.outcome !== undefined) {
    const outcomes: readonly CallOutcome[] =
      typeof filter.outcome === 'string' ? [filter.outcome] : filter.outcome;
    if (!outcomes.includes(call.outcome)) return false;
  }
  return true;
}

function tally(calls: readonly ProxiedCall[], key: (c: ProxiedCall) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) {
    const k = key(c);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** The proxy's side of the call log: the read API plus recording and clearing. */
export interface CallRecorder {
  readonly log: CallLog;
  /** Records a new call (outcome `forwarded`, status 0 until answered) and returns it for updating. */
  record(call: Omit<ProxiedCall, 'seq' | 'time' | 'outcome' | 'status'>): ProxiedCall;
  clear(): void;
}

export function createCallRecorder(): CallRecorder {
  let calls: ProxiedCall[] = [];
  let seq = 0;
  const list = (filter?: CallFilter): ProxiedCall[] => calls.filter((c) => matches(c, filter));
  return {
    log: {
      count: (filter) => list(filter).length,
      countOf: (operation, filter) => list({ ...filter, operation }).length,
      byOperation: (filter) => tally(list(filter), (c) => c.operation),
      byAccountRegion: (filter) => tally(list(filter), (c) => `${c.accountId}/${c.region}`),
      list,
    },
    record: (call) => {
      const recorded: ProxiedCall = {
        seq: ++seq,
        time: Date.now(),
        ...call,
        outcome: 'forwarded',
        status: 0,
      };
      calls.push(recorded);
      return recorded;
    },
    clear: () => {
      calls = [];
    },
  };
}
