/**
 * The AWS-fidelity proxy: a loopback HTTP server in front of moto that makes the emulator behave like
 * real AWS where moto takes shortcuts, and lets tests observe and perturb the traffic.
 *
 * - real API Gateway paging on `GetRestApis`, `GetUsagePlans`, `GetApiKeys`, `GetUsagePlanKeys`
 *   (default 25, maximum 500, opaque `position`, limit > 500 refused with 400 BadRequestException);
 * - call counting by service, operation, account and region;
 * - IAM refusal mode: API Gateway calls outside a policy are answered 403 `AccessDeniedException`;
 * - seeded fault injection (429 with/without `Retry-After`, 500/502/503, connection resets, latency);
 * - a token-bucket throttle per account-region answering 429 like API Gateway.
 *
 * Faults, throttling and refusals are answered by the proxy itself: such a request never reaches moto.
 * Order per request: injected latency and faults → IAM policy → token bucket → paging/exports → moto.
 * Requests without a SigV4 `Authorization` header (moto's own `/moto-api/`) pass through unrecorded.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { evaluatePolicy, type PolicyDocument } from './iam.js';
import { identifyRequest, type RequestIdentity } from './operations.js';

export type { PolicyDocument, PolicyStatement } from './iam.js';

/** moto's default account: every access key it does not know belongs to it. */
export const DEFAULT_ACCOUNT_ID = '123456789012';

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

export interface FaultRates {
  /** 429 TooManyRequestsException without Retry-After. */
  throttle429?: number;
  /** 429 TooManyRequestsException with `Retry-After: 1`. */
  throttle429RetryAfter?: number;
  error500?: number;
  error502?: number;
  error503?: number;
  /** The connection is destroyed without an answer. */
  reset?: number;
}

export type FaultKind = keyof FaultRates;

export interface FaultConfig {
  /** PRNG seed: the same seed and the same request sequence give the same faults. */
  seed: number;
  /** Probability per request of each fault kind; their sum must be ≤ 1. */
  rates: FaultRates;
  /** Added latency per matching request: fixed, or uniformly drawn from [min, max]. */
  latencyMs?: number | { min: number; max: number };
  /** Only these operation names are affected (all operations of `services` when omitted). */
  operations?: readonly string[];
  /** Only these services are affected; default `['apigateway']`. */
  services?: readonly string[];
}

export interface ThrottleConfig {
  /** Sustained requests per second per account-region (API Gateway management API: about 10). */
  ratePerSecond: number;
  /** Bucket size (API Gateway: about 40). */
  burst: number;
  /** Window over which the sustained rate is measured for the stats, default 5000 ms. */
  sustainWindowMs?: number;
}

export interface ThrottleStats {
  /** 429s sent by the token bucket. */
  sent429: number;
  /** Requests admitted by the bucket. */
  admitted: number;
  /**
   * Highest rate of API Gateway requests *arriving* (admitted or not) at one account-region, measured as
   * requests per second over a sliding window of `sustainWindowMs`.
   */
  peakSustainedRate: number;
  /** Same, for requests the bucket admitted. */
  peakAdmittedRate: number;
  byAccountRegion: Record<string, { sent429: number; admitted: number; peakSustainedRate: number }>;
}

export interface ProxyStats {
  requests: number;
  forwarded: number;
  /** Calls refused by the IAM policy. */
  refused: number;
  /** Pages answered by the paging emulation. */
  pagedResponses: number;
  /** Calls refused by the paging emulation (limit > 500, bad position). */
  rejected: number;
  faults: Record<FaultKind, number> & { total: number; delayed: number };
  throttle: ThrottleStats;
}

export interface FidelityProxy {
  /** `http://127.0.0.1:<port>` — give this to SDK clients as `endpoint`. */
  readonly endpoint: string;
  readonly port: number;
  /** moto's endpoint, behind the proxy. */
  readonly target: string;
  readonly calls: CallLog;
  resetCalls(): void;
  /** Current counters (a snapshot). */
  readonly stats: ProxyStats;
  resetStats(): void;
  /**
   * IAM refusal mode. With a document, every API Gateway call is refused unless the policy allows
   * `apigateway:<METHOD>` on `arn:aws:apigateway:<region>::<path>`; `undefined` turns it off.
   * With `accessKeyId`, the policy applies to that key only (and overrides the general one for it).
   */
  setPolicy(policy: PolicyDocument | undefined, options?: { accessKeyId?: string }): void;
  setFaults(config: FaultConfig | undefined): void;
  setThrottle(config: ThrottleConfig | undefined): void;
  /** Attributes an access key to an account (keys returned by STS AssumeRole are learned automatically). */
  registerAccessKey(accessKeyId: string, accountId: string): void;
  /** Account the proxy attributes to an access key. */
  accountOf(accessKeyId: string): string;
  /** Turns faults, throttle and policies off and clears calls and stats. */
  resetAll(): void;
  stop(): Promise<void>;
}

export interface FidelityProxyOptions {
  /** moto endpoint, e.g. `http://127.0.0.1:5000`. */
  target: string;
  /** Port to listen on (127.0.0.1); free port when omitted. */
  port?: number;
  /** Account of unknown access keys, default moto's 123456789012. */
  defaultAccountId?: string;
}

/** API Gateway's page sizes. */
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 500;
/** List operations moto answers in one page, whatever `limit` says; the proxy pages them like AWS. */
export const PAGED_OPERATIONS: ReadonlySet<string> = new Set([
  'GetRestApis',
  'GetUsagePlans',
  'GetApiKeys',
  'GetUsagePlanKeys',
]);

/** mulberry32: a tiny, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FAULT_KINDS: readonly FaultKind[] = [
  'throttle429',
  'throttle429RetryAfter',
  'error500',
  'error502',
  'error503',
  'reset',
];

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

function emptyStats(): ProxyStats {
  return {
    requests: 0,
    forwarded: 0,
    refused: 0,
    pagedResponses: 0,
    rejected: 0,
    faults: {
      throttle429: 0,
      throttle429RetryAfter: 0,
      error500: 0,
      error502: 0,
      error503: 0,
      reset: 0,
      total: 0,
      delayed: 0,
    },
    throttle: { sent429: 0, admitted: 0, peakSustainedRate: 0, peakAdmittedRate: 0, byAccountRegion: {} },
  };
}

/** Sliding-window rate meter. */
class RateMeter {
  private readonly times: number[] = [];
  private head = 0;
  peak = 0;
  constructor(private readonly windowMs: number) {}
  hit(now: number): void {
    this.times.push(now);
    while (this.head < this.times.length && this.times[this.head]! <= now - this.windowMs) this.head++;
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    const rate = (this.times.length - this.head) / (this.windowMs / 1000);
    if (rate > this.peak) this.peak = rate;
  }
}

interface Bucket {
  tokens: number;
  last: number;
  sent429: number;
  admitted: number;
  arrivals: RateMeter;
  admittedMeter: RateMeter;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'te',
  'trailer',
]);

function forward(
  target: URL,
  req: IncomingMessage,
  body: Buffer,
  override?: { method: string; path: string },
): Promise<UpstreamResponse> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  }
  headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: override?.method ?? req.method,
        path: override?.path ?? req.url,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    upstream.on('error', reject);
    upstream.end(body);
  });
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer | string,
): void {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
  }
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  out['content-length'] = String(buf.length);
  res.writeHead(status, out);
  res.end(buf);
}

/** An error answered the way the given service's protocol shapes it. */
function sendError(
  res: ServerResponse,
  identity: RequestIdentity,
  status: number,
  code: string,
  message: string,
  extraHeaders: Record<string, string> = {},
): void {
  const requestId = randomUUID();
  if (identity.service === 'apigateway' || identity.service === 'unsigned') {
    send(
      res,
      status,
      {
        'content-type': 'application/json',
        'x-amzn-errortype': code,
        'x-amzn-requestid': requestId,
        ...extraHeaders,
      },
      JSON.stringify({ message }),
    );
    return;
  }
  if (identity.service === 'sts') {
    const xml =
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${status < 500 ? 'Sender' : 'Receiver'}</Type>` +
      `<Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    send(res, status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...extraHeaders }, xml);
    return;
  }
  send(
    res,
    status,
    {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-errortype': code,
      'x-amzn-requestid': requestId,
      ...extraHeaders,
    },
    JSON.stringify({ __type: code, message }),
  );
}

/** Fault → (status, error code) per protocol family. */
function faultShape(kind: FaultKind, service: string): { status: number; code: string; message: string } {
  const apigw = service === 'apigateway';
  switch (kind) {
    case 'throttle429':
    case 'throttle429RetryAfter':
      return apigw || service === 'unsigned'
        ? { status: 429, code: 'TooManyRequestsException', message: 'Too Many Requests' }
        : { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' };
    case 'error500':
      return { status: 500, code: 'InternalFailure', message: 'Internal server error (injected)' };
    case 'error502':
      return { status: 502, code: 'ServiceUnavailableException', message: 'Bad gateway (injected)' };
    default:
      return { status: 503, code: 'ServiceUnavailableException', message: 'Service unavailable (injected)' };
  }
}

interface SwaggerDocument {
  swagger?: string;
  info?: { title?: string; version?: string; description?: string };
  host?: string;
  basePath?: string;
  paths?: Record<
    string,
    Record<string, { responses?: Record<string, { description?: string; schema?: unknown }> }>
  >;
  definitions?: Record<string, unknown>;
}

/** Rewrites `#/definitions/X` references to `#/components/schemas/X`. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string'
          ? v.replace('#/definitions/', '#/components/schemas/')
          : rewriteRefs(v),
      ]),
    );
  }
  return value;
}

/**
 * Converts moto's Swagger 2.0 export into the OpenAPI 3.0.1 shape API Gateway's `oas30` export has
 * (`servers` with a `basePath` variable defaulting to the stage, responses with JSON content, schemas).
 */
export function swaggerToOas30(
  swagger: SwaggerDocument,
  options: { stageName: string; version: string; schemas?: Record<string, unknown> },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, operations] of Object.entries(swagger.paths ?? {})) {
    const converted: Record<string, unknown> = {};
    for (const [method, operation] of Object.entries(operations)) {
      const responses: Record<string, unknown> = {};
      for (const [code, response] of Object.entries(operation.responses ?? {})) {
        responses[code] = {
          description: response.description ?? `${code} response`,
          ...(response.schema
            ? { content: { 'application/json': { schema: rewriteRefs(response.schema) } } }
            : {}),
        };
      }
      const parameters = [...path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      converted[method.toLowerCase()] = { ...(parameters.length > 0 ? { parameters } : {}), responses };
    }
    paths[path] = converted;
  }
  return {
    openapi: '3.0.1',
    info: { title: swagger.info?.title ?? '', version: options.version },
    servers: [
      {
        url: `https://${swagger.host ?? 'localhost'}/{basePath}`,
        variables: { basePath: { default: options.stageName } },
      },
    ],
    paths,
    components: { schemas: { ...(rewriteRefs(swagger.definitions ?? {}) as object), ...options.schemas } },
  };
}

interface PageToken {
  /** id of the last item returned */
  a: string;
  /** offset after that item */
  o: number;
}

function encodePosition(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodePosition(position: string): PageToken | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(position, 'base64url').toString('utf8'));
    if (
      parsed &&
      typeof parsed === 'object' &&
      typeof (parsed as PageToken).a === 'string' &&
      Number.isInteger((parsed as PageToken).o) &&
      (parsed as PageToken).o >= 0
    ) {
      return parsed as PageToken;
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** Starts the proxy on 127.0.0.1. */
export async function startFidelityProxy(options: FidelityProxyOptions): Promise<FidelityProxy> {
  const target = new URL(options.target);
  const defaultAccountId = options.defaultAccountId ?? DEFAULT_ACCOUNT_ID;
  const accounts = new Map<string, string>();
  let calls: ProxiedCall[] = [];
  let seq = 0;
  let stats = emptyStats();
  let policy: PolicyDocument | undefined;
  const keyPolicies = new Map<string, PolicyDocument | undefined>();
  let faults: { config: FaultConfig; random: () => number } | undefined;
  let throttle: ThrottleConfig | undefined;
  let buckets = new Map<string, Bucket>();

  const accountOf = (accessKeyId: string): string => accounts.get(accessKeyId) ?? defaultAccountId;

  /** Learns the account of temporary keys from STS AssumeRole responses. */
  const learnFromSts = (body: Buffer): void => {
    const text = body.toString('utf8');
    const key = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(text)?.[1];
    const account = /<Arn>arn:[^:]+:sts::(\d{12}):assumed-role\//.exec(text)?.[1];
    if (key && account) accounts.set(key, account);
  };

  const policyFor = (accessKeyId: string): PolicyDocument | undefined =>
    keyPolicies.has(accessKeyId) ? keyPolicies.get(accessKeyId) : policy;

  const pickFault = (identity: RequestIdentity): { kind?: FaultKind; delayMs: number } => {
    if (!faults) return { delayMs: 0 };
    const { config, random } = faults;
    const services = config.services ?? ['apigateway'];
    if (!services.includes(identity.service)) return { delayMs: 0 };
    if (config.operations && !config.operations.includes(identity.operation)) return { delayMs: 0 };
    // Always draw the same number of values per matching request, so a seed reproduces exactly.
    const r = random();
    const l = random();
    let delayMs = 0;
    if (typeof config.latencyMs === 'number') delayMs = config.latencyMs;
    else if (config.latencyMs)
      delayMs = config.latencyMs.min + l * (config.latencyMs.max - config.latencyMs.min);
    let acc = 0;
    for (const kind of FAULT_KINDS) {
      acc += config.rates[kind] ?? 0;
      if (r < acc) return { kind, delayMs };
    }
    return { delayMs };
  };

  const takeToken = (accountRegion: string): boolean => {
    if (!throttle) return true;
    const now = performance.now();
    let bucket = buckets.get(accountRegion);
    const windowMs = throttle.sustainWindowMs ?? 5000;
    if (!bucket) {
      bucket = {
        tokens: throttle.burst,
        last: now,
        sent429: 0,
        admitted: 0,
        arrivals: new RateMeter(windowMs),
        admittedMeter: new RateMeter(windowMs),
      };
      buckets.set(accountRegion, bucket);
    }
    bucket.tokens = Math.min(
      throttle.burst,
      bucket.tokens + ((now - bucket.last) / 1000) * throttle.ratePerSecond,
    );
    bucket.last = now;
    bucket.arrivals.hit(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      bucket.admitted++;
      bucket.admittedMeter.hit(now);
      return true;
    }
    bucket.sent429++;
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const identity = identifyRequest(method, url, req.headers, body);
    const parsedUrl = new URL(url, 'http://localhost');

    // moto's own control API and unsigned requests pass straight through, unrecorded.
    if (identity.service === 'unsigned') {
      const upstream = await forward(target, req, body);
      send(res, upstream.status, upstream.headers, upstream.body);
      return;
    }

    const accountId = accountOf(identity.accessKeyId);
    const call: ProxiedCall = {
      seq: ++seq,
      time: Date.now(),
      service: identity.service,
      operation: identity.operation,
      method,
      path: parsedUrl.pathname,
      accountId,
      region: identity.region,
      accessKeyId: identity.accessKeyId,
      outcome: 'forwarded',
      status: 0,
    };
    calls.push(call);
    stats.requests++;
    res.on('finish', () => {
      call.status = res.statusCode;
    });

    // 1. injected faults
    const fault = pickFault(identity);
    if (fault.delayMs > 0) {
      stats.faults.delayed++;
      await new Promise((r) => setTimeout(r, fault.delayMs));
    }
    if (fault.kind) {
      call.outcome = 'fault';
      stats.faults[fault.kind]++;
      stats.faults.total++;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      const shape = faultShape(fault.kind, identity.service);
      sendError(
        res,
        identity,
        shape.status,
        shape.code,
        shape.message,
        fault.kind === 'throttle429RetryAfter' ? { 'retry-after': '1' } : {},
      );
      return;
    }

    if (identity.service === 'apigateway') {
      // 2. IAM refusal
      const activePolicy = policyFor(identity.accessKeyId);
      if (activePolicy) {
        const action = `apigateway:${method.toUpperCase()}`;
        const resource = `arn:aws:apigateway:${identity.region}::${decodeURIComponent(parsedUrl.pathname)}`;
        if (evaluatePolicy(activePolicy, action, resource) === 'deny') {
          call.outcome = 'refused';
          stats.refused++;
          const principal = `arn:aws:sts::${accountId}:assumed-role/federation-test-role/${identity.accessKeyId || 'anonymous'}`;
          sendError(
            res,
            identity,
            403,
            'AccessDeniedException',
            `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
          );
          return;
        }
      }
      // 3. token bucket per account-region
      if (throttle && !takeToken(`${accountId}/${identity.region}`)) {
        call.outcome = 'throttled';
        sendError(res, identity, 429, 'TooManyRequestsException', 'Too Many Requests');
        return;
      }
      // 4. paging emulation
      if (PAGED_OPERATIONS.has(identity.operation) && method.toUpperCase() === 'GET') {
        await answerPaged(req, res, body, parsedUrl.searchParams, identity, call);
        return;
      }
      // 5. exports as API Gateway produces them
      if (identity.operation === 'GetExport') {
        await answerExport(req, res, parsedUrl.pathname, identity);
        return;
      }
    }

    const upstream = await forward(target, req, body);
    stats.forwarded++;
    if (
      identity.service === 'sts' &&
      identity.operation.startsWith('AssumeRole') &&
      upstream.status === 200
    ) {
      learnFromSts(upstream.body);
    }
    send(res, upstream.status, upstream.headers, upstream.body);
  };

  const answerPaged = async (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    query: URLSearchParams,
    identity: RequestIdentity,
    call: ProxiedCall,
  ): Promise<void> => {
    const limitParam = query.get('limit');
    let limit = DEFAULT_PAGE_SIZE;
    if (limitParam !== null) {
      const n = Number(limitParam);
      if (!/^-?\d+$/.test(limitParam) || n < 1 || n > MAX_PAGE_SIZE) {
        call.outcome = 'rejected';
        stats.rejected++;
        sendError(
          res,
          identity,
          400,
          'BadRequestException',
          n > MAX_PAGE_SIZE ? `Limit cannot exceed ${MAX_PAGE_SIZE}` : 'Invalid limit parameter',
        );
        return;
      }
      limit = n;
    }
    const positionParam = query.get('position');
    let start = 0;
    let items: Array<Record<string, unknown>> = [];
    const upstream = await forward(target, req, body);
    stats.forwarded++;
    if (upstream.status !== 200) {
      send(res, upstream.status, upstream.headers, upstream.body);
      return;
    }
    const parsed = JSON.parse(upstream.body.toString('utf8') || '{}') as {
      item?: Array<Record<string, unknown>>;
    };
    items = parsed.item ?? [];
    if (positionParam !== null) {
      const token = decodePosition(positionParam);
      if (!token) {
        call.outcome = 'rejected';
        stats.rejected++;
        sendError(res, identity, 400, 'BadRequestException', 'Invalid position parameter');
        return;
      }
      // Resume after the last item returned; if it has gone since, fall back to the offset.
      const index = items.findIndex((item) => item.id === token.a);
      start = index >= 0 ? index + 1 : Math.min(token.o, items.length);
    }
    const page = items.slice(start, start + limit);
    const end = start + page.length;
    const result: { item: Array<Record<string, unknown>>; position?: string } = { item: page };
    const last = page[page.length - 1];
    if (end < items.length && last) result.position = encodePosition({ a: String(last.id), o: end });
    stats.pagedResponses++;
    send(res, 200, { ...upstream.headers, 'content-type': 'application/json' }, JSON.stringify(result));
  };

  /**
   * moto exports the API's current resources as Swagger 2.0 whatever the type, for any stage name, with
   * a timestamp as version. Answer like API Gateway instead: 404 for an unknown stage, an OpenAPI 3.0.1
   * document for `oas30`, the API's models as schemas, and a version stable per deployment.
   */
  const answerExport = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    identity: RequestIdentity,
  ): Promise<void> => {
    const [, , restApiId, , stageName, , exportType] = path.split('/').map((p) => decodeURIComponent(p));
    const stagePath = `/restapis/${encodeURIComponent(restApiId!)}/stages/${encodeURIComponent(stageName!)}`;
    const stage = await forward(target, req, Buffer.alloc(0), { method: 'GET', path: stagePath });
    if (stage.status !== 200) {
      sendError(res, identity, 404, 'NotFoundException', 'Invalid stage identifier specified');
      return;
    }
    const { deploymentId } = JSON.parse(stage.body.toString('utf8')) as { deploymentId?: string };
    let version = deploymentId ?? 'undeployed';
    if (deploymentId) {
      const deployment = await forward(target, req, Buffer.alloc(0), {
        method: 'GET',
        path: `/restapis/${encodeURIComponent(restApiId!)}/deployments/${encodeURIComponent(deploymentId)}`,
      });
      const created =
        deployment.status === 200
          ? (JSON.parse(deployment.body.toString('utf8')) as { createdDate?: number }).createdDate
          : undefined;
      if (typeof created === 'number')
        version = new Date(created * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    const modelsResponse = await forward(target, req, Buffer.alloc(0), {
      method: 'GET',
      path: `/restapis/${encodeURIComponent(restApiId!)}/models`,
    });
    const models =
      modelsResponse.status === 200
        ? ((
            JSON.parse(modelsResponse.body.toString('utf8')) as {
              item?: Array<{ name?: string; schema?: string }>;
            }
          ).item ?? [])
        : [];
    const upstream = await forward(target, req, Buffer.alloc(0));
    stats.forwarded++;
    if (upstream.status !== 200) {
      send(res, upstream.status, upstream.headers, upstream.body);
      return;
    }
    const swagger = JSON.parse(upstream.body.toString('utf8')) as SwaggerDocument;
    const schemas: Record<string, unknown> = {};
    for (const model of models) {
      if (!model.name || !model.schema) continue;
      try {
        schemas[model.name] = JSON.parse(model.schema);
      } catch {
        // a model with a non-JSON schema is left out
      }
    }
    const document =
      exportType === 'oas30'
        ? swaggerToOas30(swagger, { stageName: stageName!, version, schemas })
        : {
            ...swagger,
            info: { ...swagger.info, version },
            paths: Object.fromEntries(
              Object.entries(swagger.paths ?? {}).map(([path, ops]) => [
                path,
                Object.fromEntries(Object.entries(ops).map(([m, op]) => [m.toLowerCase(), op])),
              ]),
            ),
            basePath: `/${stageName}`,
            definitions: { ...swagger.definitions, ...schemas },
          };
    send(
      res,
      200,
      {
        'content-type': 'application/json',
        'content-disposition': `attachment; filename="${exportType === 'oas30' ? 'oas30' : 'swagger'}_${version}.json"`,
        'x-amzn-requestid': randomUUID(),
      },
      JSON.stringify(document),
    );
  };

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        send(
          res,
          502,
          { 'content-type': 'application/json', 'x-amzn-errortype': 'BadGatewayException' },
          JSON.stringify({
            message: `fidelity proxy: ${error instanceof Error ? error.message : String(error)}`,
          }),
        );
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const callLog: CallLog = {
    count: (filter) => calls.filter((c) => matches(c, filter)).length,
    countOf: (operation, filter) => calls.filter((c) => matches(c, { ...filter, operation })).length,
    byOperation: (filter) =>
      tally(
        calls.filter((c) => matches(c, filter)),
        (c) => c.operation,
      ),
    byAccountRegion: (filter) =>
      tally(
        calls.filter((c) => matches(c, filter)),
        (c) => `${c.accountId}/${c.region}`,
      ),
    list: (filter) => calls.filter((c) => matches(c, filter)),
  };

  const snapshotStats = (): ProxyStats => {
    const throttleStats: ThrottleStats = {
      sent429: 0,
      admitted: 0,
      peakSustainedRate: 0,
      peakAdmittedRate: 0,
      byAccountRegion: {},
    };
    for (const [key, b] of buckets) {
      throttleStats.sent429 += b.sent429;
      throttleStats.admitted += b.admitted;
      throttleStats.peakSustainedRate = Math.max(throttleStats.peakSustainedRate, b.arrivals.peak);
      throttleStats.peakAdmittedRate = Math.max(throttleStats.peakAdmittedRate, b.admittedMeter.peak);
      throttleStats.byAccountRegion[key] = {
        sent429: b.sent429,
        admitted: b.admitted,
        peakSustainedRate: b.arrivals.peak,
      };
    }
    return structuredClone({ ...stats, throttle: throttleStats });
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    target: options.target,
    calls: callLog,
    resetCalls: () => {
      calls = [];
    },
    get stats() {
      return snapshotStats();
    },
    resetStats: () => {
      stats = emptyStats();
      buckets = new Map();
    },
    setPolicy: (doc, opts) => {
      if (opts?.accessKeyId !== undefined) {
        if (doc) keyPolicies.set(opts.accessKeyId, doc);
        else keyPolicies.delete(opts.accessKeyId);
      } else {
        policy = doc;
      }
    },
    setFaults: (config) => {
      if (config) {
        const sum = FAULT_KINDS.reduce((s, k) => s + (config.rates[k] ?? 0), 0);
        if (sum > 1) throw new Error(`fault rates sum to ${sum}, more than 1`);
      }
      faults = config ? { config, random: mulberry32(config.seed) } : undefined;
    },
    setThrottle: (config) => {
      throttle = config;
      buckets = new Map();
    },
    registerAccessKey: (accessKeyId, accountId) => {
      accounts.set(accessKeyId, accountId);
    },
    accountOf,
    resetAll: () => {
      policy = undefined;
      keyPolicies.clear();
      faults = undefined;
      throttle = undefined;
      buckets = new Map();
      calls = [];
      stats = emptyStats();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
