/**
 * The AWS-fidelity proxy: a loopback HTTP server in front of moto that makes the emulator behave like
 * real AWS where moto takes shortcuts, and lets tests observe and perturb the traffic. This file holds
 * `startFidelityProxy` and the request pipeline; each behaviour lives in its own module:
 *
 * - `call-log.ts`: every request recorded by service, operation, account and region;
 * - `faults.ts`: seeded fault injection (429 with/without `Retry-After`, 500/502/503, resets, 409
 *   concurrent modification, latency);
 * - `refusal.ts`: IAM refusal mode (403 `AccessDeniedException` outside a policy);
 * - `throttle.ts`: a token bucket per account-region answering 429 like API Gateway, and the key
 *   operations' own 5 requests/s;
 * - `paging.ts`: real API Gateway paging of the list operations moto answers in one page;
 * - `exports.ts`: `GetExport` as API Gateway answers it;
 * - `usage-plan-keys.ts`: `GetUsagePlanKeys` without the deleted keys moto keeps listing;
 * - `secret-labels.ts`: `PutSecretValue` leaves the previous version's other staging labels in place;
 * - `accounts.ts`: which account an access key belongs to; `http.ts`: forwarding and error shapes.
 *
 * Faults, throttling and refusals are answered by the proxy itself: such a request never reaches moto.
 * Order per request: injected latency and faults → IAM policy → token bucket → paging (GetUsagePlanKeys
 * filtered) / exports → moto.
 * Requests without a SigV4 `Authorization` header (moto's own `/moto-api/`) pass through unrecorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createAccountDirectory } from './accounts.js';
import { type CallLog, createCallRecorder } from './call-log.js';
import { answerExport } from './exports.js';
import { createFaultInjector, type FaultConfig, type FaultKind, faultShape } from './faults.js';
import { type Exchange, forward, readBody, send, sendError, UpstreamAnswer } from './http.js';
import type { PolicyDocument } from './iam.js';
import { identifyRequest } from './operations.js';
import { answerPaged, PAGED_OPERATIONS } from './paging.js';
import { createPolicyGate } from './refusal.js';
import { createRestApiTags } from './rest-api-tags.js';
import { roleExists } from './roles.js';
import { putSecretValueKeepingLabels } from './secret-labels.js';
import { createThrottle, type ThrottleConfig, type ThrottleStats } from './throttle.js';
import { withoutDeletedKeys } from './usage-plan-keys.js';

// The proxy's public API predates the split into modules: everything stays importable from here.
export { DEFAULT_ACCOUNT_ID } from './accounts.js';
export type { CallFilter, CallLog, CallOutcome, ProxiedCall } from './call-log.js';
export { swaggerToOas30 } from './exports.js';
export { type FaultConfig, type FaultKind, type FaultRates, mulberry32 } from './faults.js';
export type { PolicyDocument, PolicyStatement } from './iam.js';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PAGED_OPERATIONS } from './paging.js';
export { API_KEY_OPERATION_QUOTAS, type ThrottleConfig, type ThrottleStats } from './throttle.js';

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
  /** REST APIs whose `GetExport` API Gateway refuses for good (400 `BadRequestException`); `undefined` clears. */
  refuseExports(restApiIds: Iterable<string> | undefined): void;
  /**
   * Broken paging: these paged operations answer every request that carries a `position` with that same
   * `position` again (a list that never ends), as a misbehaving service or a bug in a paging layer
   * would. `undefined` turns it off.
   */
  setPagingFault(config: { operations: readonly string[] } | undefined): void;
  /**
   * With `true`, `sts:AssumeRole` of a role that does not exist in its account (moto's IAM) is refused with
   * 403 `AccessDenied`, as AWS does; default off (moto lets any role ARN be assumed).
   */
  requireRoles(on: boolean): void;
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
  /**
   * moto's fixes (paging, exports, usage plan keys of deleted keys, staging labels on PutSecretValue), default on. Off, the proxy changes no
   * answer: it records, and throttles, faults or refuses when told to (a plain moto behind a recording proxy).
   */
  fixes?: boolean;
}

type Counters = Omit<ProxyStats, 'throttle'>;

function emptyCounters(): Counters {
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
      conflict409: 0,
      total: 0,
      delayed: 0,
    },
  };
}

/** Starts the proxy on 127.0.0.1. */
export async function startFidelityProxy(options: FidelityProxyOptions): Promise<FidelityProxy> {
  const target = new URL(options.target);
  const accounts = createAccountDirectory(options.defaultAccountId);
  const calls = createCallRecorder();
  const faults = createFaultInjector();
  let repeatPositionOf = new Set<string>();
  const policies = createPolicyGate();
  const throttle = createThrottle();
  const restApiTags = createRestApiTags();
  let refusedExports = new Set<string>();
  let requireRoles = false;
  let counters = emptyCounters();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const identity = identifyRequest(method, req.url ?? '/', req.headers, body);
    const url = new URL(req.url ?? '/', 'http://localhost');

    // moto's own control API and unsigned requests pass straight through, unrecorded.
    if (identity.service === 'unsigned') {
      const upstream = await forward(target, req, body);
      send(res, upstream.status, upstream.headers, upstream.body);
      return;
    }

    const accountId = accounts.accountOf(identity.accessKeyId);
    const call = calls.record({
      service: identity.service,
      operation: identity.operation,
      method,
      path: url.pathname,
      accountId,
      region: identity.region,
      accessKeyId: identity.accessKeyId,
    });
    counters.requests++;
    res.on('finish', () => {
      call.status = res.statusCode;
    });

    // 1. injected latency and faults
    const fault = faults.pick(identity, accountId);
    if (fault.delayMs > 0) {
      counters.faults.delayed++;
      await new Promise((r) => setTimeout(r, fault.delayMs));
    }
    if (fault.kind) {
      call.outcome = 'fault';
      counters.faults[fault.kind]++;
      counters.faults.total++;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      const shape = faultShape(fault.kind, identity.service);
      const retryAfter: Record<string, string> =
        fault.kind === 'throttle429RetryAfter' ? { 'retry-after': '1' } : {};
      sendError(res, identity, shape.status, shape.code, shape.message, retryAfter);
      return;
    }

    if (identity.service === 'apigateway') {
      // 2. IAM refusal
      const refusal = policies.check({
        method,
        path: url.pathname,
        region: identity.region,
        accessKeyId: identity.accessKeyId,
        accountId,
      });
      if (refusal) {
        call.outcome = 'refused';
        counters.refused++;
        sendError(res, identity, 403, 'AccessDeniedException', refusal.message);
        return;
      }
      // 3. token bucket per account-region
      if (!throttle.take(`${accountId}/${identity.region}`, identity.operation)) {
        call.outcome = 'throttled';
        sendError(res, identity, 429, 'TooManyRequestsException', 'Too Many Requests', throttle.headers());
        return;
      }
      if (options.fixes === false) {
        const upstream = await forward(target, req, body);
        counters.forwarded++;
        send(res, upstream.status, upstream.headers, upstream.body);
        return;
      }
      const exchange: Exchange = {
        res,
        identity,
        url,
        forward: () => {
          counters.forwarded++;
          return forward(target, req, body);
        },
        get: (path) => forward(target, req, Buffer.alloc(0), { method: 'GET', path }),
      };
      // 4. tags of REST APIs (moto tags only stages)
      if (
        (identity.operation === 'TagResource' || identity.operation === 'UntagResource') &&
        (await restApiTags.answer(exchange, method.toUpperCase(), body))
      ) {
        return;
      }
      if (identity.operation === 'GetRestApi' && method.toUpperCase() === 'GET') {
        const upstream = await exchange.forward();
        const item = upstream.status === 200 ? JSON.parse(upstream.body.toString('utf8')) : undefined;
        send(
          res,
          upstream.status,
          upstream.headers,
          item ? JSON.stringify(restApiTags.overlay(item)) : upstream.body,
        );
        return;
      }
      // 5. paging emulation
      if (PAGED_OPERATIONS.has(identity.operation) && method.toUpperCase() === 'GET') {
        const outcome = await answerPaged(
          exchange,
          identity.operation === 'GetUsagePlanKeys'
            ? (items) => withoutDeletedKeys(exchange, items)
            : identity.operation === 'GetRestApis'
              ? async (items) => items.map((item) => restApiTags.overlay(item))
              : undefined,
          { repeatPosition: repeatPositionOf.has(identity.operation) },
        );
        if (outcome === 'rejected') {
          call.outcome = 'rejected';
          counters.rejected++;
        } else if (outcome === 'paged') {
          counters.pagedResponses++;
        }
        return;
      }
      // 6. exports as API Gateway produces them
      if (identity.operation === 'GetExport') {
        await answerExport(exchange, refusedExports);
        return;
      }
    }

    // STS: with `requireRoles`, AssumeRole of a role its account does not have is refused, as AWS does
    // (moto lets any ARN be assumed).
    if (
      requireRoles &&
      identity.service === 'sts' &&
      identity.operation === 'AssumeRole' &&
      !(await roleExists(target, body))
    ) {
      call.outcome = 'refused';
      counters.refused++;
      sendError(res, identity, 403, 'AccessDenied', 'User is not authorized to perform: sts:AssumeRole');
      return;
    }

    // 6. PutSecretValue keeps the other labels of the version it makes previous
    const upstream =
      options.fixes !== false &&
      identity.service === 'secretsmanager' &&
      identity.operation === 'PutSecretValue'
        ? await putSecretValueKeepingLabels(target, req, body)
        : await forward(target, req, body);
    counters.forwarded++;
    if (
      identity.service === 'sts' &&
      identity.operation.startsWith('AssumeRole') &&
      upstream.status === 200
    ) {
      accounts.learnFromAssumeRole(upstream.body);
    }
    send(res, upstream.status, upstream.headers, upstream.body);
  };

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof UpstreamAnswer && !res.headersSent) {
        // a fix's own upstream call failed: the client gets that answer as it came
        send(res, error.response.status, error.response.headers, error.response.body);
      } else if (!res.headersSent) {
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

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    target: options.target,
    calls: calls.log,
    resetCalls: () => calls.clear(),
    get stats() {
      return structuredClone({ ...counters, throttle: throttle.stats() });
    },
    resetStats: () => {
      counters = emptyCounters();
      throttle.resetStats();
    },
    setPolicy: (doc, opts) => policies.set(doc, opts?.accessKeyId),
    setFaults: (config) => faults.set(config),
    setThrottle: (config) => throttle.set(config),
    refuseExports: (restApiIds) => {
      refusedExports = new Set(restApiIds ?? []);
    },
    setPagingFault: (config) => {
      repeatPositionOf = new Set(config?.operations ?? []);
    },
    requireRoles: (on) => {
      requireRoles = on;
    },
    registerAccessKey: (accessKeyId, accountId) => accounts.register(accessKeyId, accountId),
    accountOf: (accessKeyId) => accounts.accountOf(accessKeyId),
    resetAll: () => {
      restApiTags.clear();
      policies.clear();
      faults.set(undefined);
      throttle.set(undefined);
      refusedExports = new Set();
      repeatPositionOf = new Set();
      requireRoles = false;
      calls.clear();
      counters = emptyCounters();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
