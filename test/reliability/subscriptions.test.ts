/**
 * Subscriptions under 30 % injected API Gateway faults, with a crash injected after every step of a
 * subscribe, under concurrency and under subscribe/unsubscribe races — through the real subscriptions
 * handler, behind the documented POST + DELETE policy. After the retries, the keys in API Gateway
 * (listed with an unrestricted client straight to moto) must match the ledger exactly.
 */
import { GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultRates, mulberry32 } from '../../emulator/proxy.js';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import {
  CatalogRepository,
  createLogger,
  noRelay,
  Outbox,
  RateLimiterRegistry,
  type SubscribeResult,
  SubscribeStep,
  type SubscriptionRecord,
  SubscriptionService,
} from '../../layers/federation-core/src/index.js';
import { allKeys, buildWorld, TABLE, type World } from '../subscriptions/support.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { THIRTY_PERCENT_FAULTS } from './faults.js';
import { SecretsHygiene } from './hygiene.js';
import { ScenarioReport } from './report.js';

const FAULT_RATES = THIRTY_PERCENT_FAULTS;
const STEPS = Object.values(SubscribeStep);
const app = { id: 'app-1', name: 'Reliability app' };
/** The subscriptions function's timeout (infra/constructs/federation-function.ts default). */
const FUNCTION_TIMEOUT_MS = 30_000;

type Answer = { ok: true; value: Record<string, unknown> } | { ok: false; code: string; message: string };

describe('subscriptions under faults, crashes and races', () => {
  const report = new ScenarioReport('subscriptions');
  /** Its own row: subscribes and unsubscribes whose key writes collide (409 concurrent modification). */
  const conflicts = new ScenarioReport('conflict409');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let world: World;
  /** subscriptionId → the step after which its next attempt crashes (once). */
  const crashes = new Map<string, string>();
  let handler: ReturnType<typeof createSubscriptionsHandler>;
  const used = new Set<string>();

  /** One invocation of the subscriptions function; a function error becomes `{ code, message }`. */
  const invoke = async (event: Record<string, unknown>): Promise<Answer> => {
    if (typeof event.subscriptionId === 'string') used.add(event.subscriptionId);
    try {
      // The context counts down as Lambda's does, and the handler leases the subscription until the
      // invocation's end. An attempt planned to crash is one that dies at its timeout (0 ms left: its
      // lease ends 1 s later, so the repeat takes over); any other has the function's whole 30 s, so a
      // slow attempt on a loaded machine is never taken over while it still runs.
      const crashing = typeof event.subscriptionId === 'string' && crashes.has(event.subscriptionId);
      const deadline = Date.now() + (crashing ? 0 : FUNCTION_TIMEOUT_MS);
      const context = { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
      const value = (await handler(event, context)) as unknown as Record<string, unknown>;
      if (typeof value.apiKey === 'string') hygiene.secret(value.apiKey);
      return { ok: true, value };
    } catch (error) {
      hygiene.error(error);
      const message = (error as Error).message;
      const code = /^([A-Z_]+): /.exec(message)?.[1];
      // A crash injected by the hook is not a function error: it is an invocation that died.
      return { ok: false, code: code ?? 'CRASH', message };
    }
  };

  /**
   * Repeats an invocation like a caller would (BUSY, AWS errors, crashes) until a final answer, backing
   * off (50 ms doubling to 800 ms): 49 callers polling a held lock every 50 ms flood the one moto
   * process with ledger reads, starving the holder's own calls; on a loaded machine that took 50
   * identical subscribes past three minutes.
   */
  const settle = async (
    event: Record<string, unknown>,
    final: readonly string[] = ['CONFLICT', 'NOT_FOUND', 'VALIDATION'],
  ) => {
    for (let attempt = 1; attempt <= 60; attempt++) {
      const answer = await invoke(event);
      if (answer.ok || final.includes(answer.code)) return answer;
      await new Promise((r) => setTimeout(r, 50 * 2 ** Math.min(attempt - 1, 4)));
    }
    throw new Error(`no final answer for ${JSON.stringify(event)} after 60 attempts`);
  };

  const subscribe = (subscriptionId: string, planId = world.plans.gold, apiId = world.apis.pets.id) => ({
    action: 'subscribe',
    subscriptionId,
    apiId,
    planId,
    application: app,
  });

  /**
   * The invariant after retries: every key on a usage plan belongs to an ACTIVE record (no orphan), every
   * ACTIVE record's key is on its plan (no duplicate: one key each), every other key in API Gateway is
   * one the ledger counts as lost (its CreateApiKey answer never arrived; on no plan). Returns the counts.
   */
  const expectLedgerEqualsApiGateway = async () => {
    const keys = await allKeys(world.raw);
    const existing = new Set(keys.map((k) => k.id!));
    const onPlans = new Map<string, string>();
    for (const plan of Object.values(world.seeded.usagePlans)) {
      const out = await world.raw.send(
        new GetUsagePlanKeysCommand({ usagePlanId: plan.usagePlanId, limit: 500 }),
      );
      for (const k of out.items ?? []) {
        // moto keeps a usage plan key after its API key is deleted; API Gateway does not.
        if (!existing.has(k.id!)) continue;
        expect(onPlans.has(k.id!), `key ${k.id} on two plans`).toBe(false);
        onPlans.set(k.id!, plan.usagePlanId);
      }
    }
    const records = (await Promise.all([...used].map((id) => world.repo.get(id)))).filter(
      (r): r is SubscriptionRecord => r !== undefined,
    );
    const active = records.filter((r) => r.status === 'ACTIVE');
    const activeKeys = new Map(active.map((r) => [r.apiKeyId!, r.usagePlanId]));
    expect(activeKeys.size, 'one key per ACTIVE subscription').toBe(active.length);
    expect(Object.fromEntries(onPlans), 'keys on usage plans = ACTIVE records').toEqual(
      Object.fromEntries(activeKeys),
    );
    const lost = records.reduce((n, r) => n + (r.lostKeyGenerations?.length ?? 0), 0);
    const unattached = keys.filter((k) => !onPlans.has(k.id!));
    expect(unattached.length, 'keys on no plan = keys the ledger counts as lost').toBe(lost);
    for (const key of unattached) {
      const owner = records.find((r) => `fed-${r.subscriptionId}` === key.name);
      expect(owner?.lostKeyGenerations?.length, `unattached key ${key.name}`).toBeGreaterThan(0);
    }
    for (const r of records.filter((x) => x.status === 'REVOKED')) {
      expect(r.keyDeleted, `${r.subscriptionId} revoked with its key deleted`).toBe(true);
      if (r.apiKeyId) expect(existing.has(r.apiKeyId)).toBe(false);
    }
    expect(
      records.filter((r) => r.status === 'PENDING'),
      'nothing left PENDING',
    ).toEqual([]);
    return { keys: keys.length, active: active.length, lost };
  };

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    world = await buildWorld(emu);
    const table = { client: world.factory.dynamoDocument(), tableName: TABLE };
    const service = new SubscriptionService({
      catalog: new CatalogRepository(table),
      subscriptions: world.repo,
      apiGateway: (target) => world.factory.apiGateway(target),
      sources: [{ name: 'default' }],
      keys: world.keys,
      // Injected 429s halve an adaptive bucket; a fast one keeps the suite within its time.
      limiters: new RateLimiterRegistry({ ratePerSecond: 400, burst: 200 }),
      retry: { baseDelayMs: 5, maxDelayMs: 40, maxRetryAfterMs: 50 },
      logger: createLogger('subscriptions'),
      hooks: {
        afterStep: (step, { subscriptionId }) => {
          if (crashes.get(subscriptionId) === step) {
            crashes.delete(subscriptionId);
            report.add({ faultsInjected: 1 });
            throw new Error(`injected crash after ${step}`);
          }
        },
      },
    });
    handler = createSubscriptionsHandler({
      service,
      outbox: new Outbox(table, { retentionDays: 7 }),
      publisher: noRelay,
      logger: createLogger('subscriptions'),
    });
  });
  afterAll(async () => {
    await emu?.stop();
    hygiene.stop();
    report.flush();
    conflicts.flush();
  });

  const withFaults = async <T>(
    seed: number,
    fn: () => Promise<T>,
    services = ['apigateway'],
    rates: FaultRates = FAULT_RATES,
    into: ScenarioReport = report,
  ): Promise<T> => {
    emu.proxy.resetStats();
    emu.proxy.setFaults({ seed, rates, services });
    let result: T;
    try {
      result = await fn();
    } finally {
      emu.proxy.setFaults(undefined);
      into.add({ faultsInjected: emu.proxy.stats.faults.total });
    }
    expect(emu.proxy.stats.faults.total, 'faults were injected').toBeGreaterThan(0);
    return result;
  };

  it('ends with API Gateway = ledger after a crash after every subscribe step, under 30% faults', async () => {
    const seed = report.seed('crashes', 5505);
    const ids = STEPS.flatMap((step) => [0, 1, 2].map((n) => ({ id: `crash-${step}-${n}`, step })));
    for (const { id, step } of ids) crashes.set(id, step);
    const answers = await withFaults(seed, () =>
      Promise.all(
        ids.map(({ id }, i) => settle(subscribe(id, i % 2 ? world.plans.gold : world.plans.silver))),
      ),
    );
    report.add({ operationsAttempted: ids.length });
    expect(crashes.size, 'every planned crash happened').toBe(0);
    for (const answer of answers) expect(answer).toMatchObject({ ok: true, value: { status: 'ACTIVE' } });
    // A repeat answers the same key, and costs no API Gateway call.
    emu.proxy.resetCalls();
    for (const [i, { id }] of ids.entries()) {
      const again = await invoke(subscribe(id, i % 2 ? world.plans.gold : world.plans.silver));
      expect(again).toEqual(answers[i]);
    }
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
    const counts = await expectLedgerEqualsApiGateway();
    // Exactly the crashes after CreateApiKey lost a key (id never recorded): 3 of them.
    expect(counts.lost).toBe(3);
    report.add({ survived: ids.length });

    // Unsubscribe half of them under faults: their keys go, the others stay.
    const revoke = ids.filter((_, i) => i % 2 === 0);
    const unsubscribed = await withFaults(seed + 1, () =>
      Promise.all(revoke.map(({ id }) => settle({ action: 'unsubscribe', subscriptionId: id }))),
    );
    report.add({ operationsAttempted: revoke.length });
    for (const answer of unsubscribed)
      expect(answer).toMatchObject({ ok: true, value: { status: 'REVOKED' } });
    const after = await expectLedgerEqualsApiGateway();
    expect(after.active).toBe(ids.length - revoke.length);
    report.add({ survived: revoke.length });
  });

  it('creates one key for 50 concurrent identical subscribes under 30% faults, all answered alike', async () => {
    const seed = report.seed('concurrent', 6606);
    const keysBefore = (await allKeys(world.raw)).length;
    emu.proxy.resetCalls();
    const answers = await withFaults(seed, () =>
      Promise.all(
        Array.from({ length: 50 }, () => settle(subscribe('fifty', world.plans.basic, world.apis.orders.id))),
      ),
    );
    report.add({ operationsAttempted: 50 });
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    const answer = answers[0] as unknown as { ok: true; value: SubscribeResult };
    expect(answer).toMatchObject({ ok: true, value: { status: 'ACTIVE' } });
    // Faults are answered by the proxy before moto: a failed CreateApiKey created nothing.
    expect(emu.proxy.calls.count({ operation: 'CreateApiKey', outcome: 'forwarded' })).toBe(1);
    expect((await allKeys(world.raw)).length).toBe(keysBefore + 1);
    await expectLedgerEqualsApiGateway();
    report.add({ survived: 50 });
  });

  it('ends consistent after interleaved subscribe/unsubscribe races on the same ids, under 30% faults', async () => {
    const seed = report.seed('races', 7707);
    const random = mulberry32(seed);
    const ids = Array.from({ length: 10 }, (_, i) => `race-${i}`);
    const operations = ids.flatMap((id) => {
      const ops: (() => Promise<Answer>)[] = [];
      const count = 2 + Math.floor(random() * 4);
      for (let k = 0; k < count; k++) {
        ops.push(
          random() < 0.55
            ? () => settle(subscribe(id))
            : () => settle({ action: 'unsubscribe', subscriptionId: id }),
        );
      }
      return ops;
    });
    // Shuffle, then start them all with random small delays: subscribes and unsubscribes interleave.
    for (let i = operations.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [operations[i], operations[j]] = [operations[j]!, operations[i]!];
    }
    const answers = await withFaults(seed, () =>
      Promise.all(
        operations.map(async (op) => {
          await new Promise((r) => setTimeout(r, Math.floor(random() * 40)));
          return op();
        }),
      ),
    );
    report.add({ operationsAttempted: operations.length });
    // Every answer is final and typed: ACTIVE, REVOKED, CONFLICT (revoked before) or NOT_FOUND (not yet there).
    for (const answer of answers) {
      if (answer.ok) expect(['ACTIVE', 'REVOKED']).toContain(answer.value.status);
      else expect(['CONFLICT', 'NOT_FOUND']).toContain(answer.code);
    }
    await expectLedgerEqualsApiGateway();
    const finals = await Promise.all(ids.map((id) => world.repo.get(id)));
    for (const record of finals) if (record) expect(['ACTIVE', 'REVOKED']).toContain(record.status);
    // The races did race: both outcomes occur.
    expect(new Set(finals.map((r) => r?.status ?? 'absent')).size).toBeGreaterThan(1);
    report.add({ survived: operations.length });
  });

  it('ends with API Gateway = ledger when the ledger (DynamoDB) fails 30% of its calls too', async () => {
    const seed = report.seed('ledgerFaults', 8808);
    const ids = Array.from({ length: 12 }, (_, i) => `ledger-${i}`);
    const answers = await withFaults(
      seed,
      () => Promise.all(ids.map((id) => settle(subscribe(id, world.plans.silver)))),
      ['apigateway', 'dynamodb'],
    );
    report.add({ operationsAttempted: ids.length });
    for (const answer of answers) expect(answer).toMatchObject({ ok: true, value: { status: 'ACTIVE' } });
    const revoke = ids.slice(0, 6);
    const revoked = await withFaults(
      seed + 1,
      () => Promise.all(revoke.map((id) => settle({ action: 'unsubscribe', subscriptionId: id }))),
      ['apigateway', 'dynamodb'],
    );
    report.add({ operationsAttempted: revoke.length });
    for (const answer of revoked) expect(answer).toMatchObject({ ok: true, value: { status: 'REVOKED' } });
    await expectLedgerEqualsApiGateway();
    report.add({ survived: ids.length + revoke.length });
  });

  it('ends with API Gateway = ledger when 20% of the calls collide (409 concurrent modification) on top of 30% faults', async () => {
    const seed = conflicts.seed('conflict409', 9909);
    const rates = { ...FAULT_RATES, conflict409: 0.2 };
    const ids = Array.from({ length: 16 }, (_, i) => `collide-${i}`);
    const custom = (i: number) => `CollidingCustomValue${String(i).padStart(4, '0')}abcdef`;
    // Half derive their value, half bring their own: a collision never makes a custom value a CONFLICT.
    const event = (id: string, i: number) => ({
      ...subscribe(
        id,
        i % 2 ? world.plans.gold : world.plans.basic,
        i % 2 ? world.apis.pets.id : world.apis.orders.id,
      ),
      ...(i % 4 === 0 ? { apiKey: custom(i) } : {}),
    });
    for (const [i] of ids.entries()) if (i % 4 === 0) hygiene.secret(custom(i));
    const answers = await withFaults(
      seed,
      () => Promise.all(ids.map((id, i) => settle(event(id, i), ['NOT_FOUND', 'VALIDATION']))),
      ['apigateway'],
      rates,
      conflicts,
    );
    conflicts.add({ operationsAttempted: ids.length });
    expect(emu.proxy.stats.faults.conflict409, '409s were injected').toBeGreaterThan(0);
    for (const answer of answers) expect(answer).toMatchObject({ ok: true, value: { status: 'ACTIVE' } });
    await expectLedgerEqualsApiGateway();
    conflicts.add({ survived: ids.length });
    const revoke = ids.filter((_, i) => i % 2 === 0);
    const revoked = await withFaults(
      seed + 1,
      () => Promise.all(revoke.map((id) => settle({ action: 'unsubscribe', subscriptionId: id }))),
      ['apigateway'],
      rates,
      conflicts,
    );
    conflicts.add({ operationsAttempted: revoke.length });
    for (const answer of revoked) expect(answer).toMatchObject({ ok: true, value: { status: 'REVOKED' } });
    await expectLedgerEqualsApiGateway();
    conflicts.add({ survived: revoke.length });
  });

  it('never echoes a custom key value in a validation error', async () => {
    const apiKey = 'CustomSecretValue0123456789abcdef';
    hygiene.secret(apiKey);
    const bad = [
      { ...subscribe('custom-1'), apiKey, extra: true },
      { ...subscribe('custom-2'), apiKey, application: { id: 'a b', name: 'x' } },
      { ...subscribe('custom-3'), apiKey: `${apiKey}-` },
      { ...subscribe('custom-4'), apiKey, planId: 42 },
    ];
    for (const event of bad) {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      const answer = await invoke(event);
      expect(answer).toMatchObject({ ok: false, code: 'VALIDATION' });
      expect((answer as { message: string }).message).not.toContain(apiKey);
      report.add({ survived: 1 });
    }
  });

  it('leaks no API key value into logs, ledger items or error messages', async () => {
    const counts = await expectLedgerEqualsApiGateway();
    report.add({ keysInApiGateway: counts.keys, keysInLedger: counts.active + counts.lost });
    const leaks = await hygiene.leaks([world.table]);
    report.add({ logLinesScanned: hygiene.lines().length, secretsLeaked: leaks.length });
    expect(hygiene.secretCount).toBeGreaterThan(10);
    expect(hygiene.lines().length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
