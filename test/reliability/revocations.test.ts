/**
 * Revocations under faults and crashes (issue 15.2): subscriptions whose API leaves the catalog (a tag
 * edit under a label filter) or whose usage plan is deleted are revoked by discovery, and their keys
 * are deleted by the subscriptions function (asynchronous `revoke-keys`, retried as Lambda retries),
 * while 30 % of API Gateway calls fail and the first attempt of some invocations dies right after
 * `DeleteApiKey`. Every revoked subscription must end with its key gone from API Gateway, its record
 * saying so, and an event telling the control plane — also when every attempt of a hand-over dies and
 * it ends in the dead-letter queue: the hourly `finish-revocations` finishes it.
 */
import {
  DeleteUsagePlanCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateUsagePlanCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventType,
  FINISH_REVOCATIONS_AFTER_MS,
  type FinishRevocationsResult,
  RevokeKeysStep,
} from '../../layers/federation-core/src/index.js';
import { apiKeyExists, type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';
import { THIRTY_PERCENT_FAULTS } from './faults.js';
import { ScenarioReport } from './report.js';

/** Subscriptions per plan: enough for several `revoke-keys` invocations to run at once. */
const PER_PLAN = 4;

describe('revocations under faults and crashes', () => {
  const report = new ScenarioReport('revocations');
  let emu: Emulator;
  let agent: RelayHarness;
  /** Subscriptions whose first `revoke-keys` attempt dies right after `DeleteApiKey`. */
  const crashOnce = new Set<string>();
  let crashes = 0;
  /** How far the subscriptions function's clock is ahead (the hour until `finish-revocations`). */
  let clockAheadMs = 0;

  beforeAll(async () => {
    emu = await startEmulator();
    agent = await startRelayHarness(emu, {
      ...TEST_AGENT,
      discovery: { ...TEST_AGENT.discovery, labels: { include: [], exclude: ['retired'] } },
      subscriptionHooks: {
        afterStep: (step, context) => {
          const id = (context as { subscriptionId?: string } | undefined)?.subscriptionId;
          if (step === RevokeKeysStep.KEY_DELETED && id !== undefined && crashOnce.delete(id)) {
            crashes++;
            throw new Error(`crash after DeleteApiKey of ${id}`);
          }
        },
      },
      subscriptionsNow: () => Date.now() + clockAheadMs,
    });
  });
  afterAll(async () => {
    await agent?.stop();
    await emu?.stop();
    report.flush();
  });

  const keyExists = (apiKeyId: string) => apiKeyExists(emu, apiKeyId);

  /**
   * Where the subscriptions ended, reported as the row's figures: survived = key gone from API Gateway,
   * record REVOKED with `keyDeleted`, and exactly one key-gone event appended after `since`.
   */
  const settle = async (
    subscribed: readonly { subscriptionId: string; apiKeyId: string }[],
    since: number,
  ) => {
    const keyGone = (await agent.relay.outbox.listAfter(since, 10_000)).filter(
      (e) =>
        e.event === EventType.SUBSCRIPTION_REVOKED &&
        (e.payload as { keyDeleted?: boolean }).keyDeleted === true,
    );
    const toldOf = (subscriptionId: string) =>
      keyGone.filter((e) => (e.payload as { subscriptionId?: string }).subscriptionId === subscriptionId)
        .length;
    let survived = 0;
    let keysLeft = 0;
    let active = 0;
    for (const { subscriptionId, apiKeyId } of subscribed) {
      const record = await agent.subscriptions.service.get({ subscriptionId });
      const exists = await keyExists(apiKeyId);
      if (exists) keysLeft++;
      if (record.status === 'ACTIVE') active++;
      if (
        !exists &&
        record.status === 'REVOKED' &&
        record.keyDeleted === true &&
        toldOf(subscriptionId) === 1
      )
        survived++;
    }
    report.add({
      operationsAttempted: subscribed.length,
      survived,
      keysInApiGateway: keysLeft,
      keysInLedger: active,
      eventsProduced: subscribed.length,
      eventsDelivered: new Set(keyGone.map((e) => (e.payload as { subscriptionId: string }).subscriptionId))
        .size,
    });
    return { survived, keysLeft, active };
  };

  it('deletes every revoked subscription’s key and says so, under 30% faults and crashes after DeleteApiKey', async () => {
    await agent.discovery.engine.run();
    const catalog = await agent.discovery.catalog.listAll();
    const pets = catalog.find((api) => api.name === 'Pets');
    const orders = catalog.find((api) => api.name === 'Orders');
    expect(pets && orders, 'pets and orders are federated').toBeTruthy();
    const plans = [
      ...pets!.plans.map((plan) => ({ api: pets!, plan })),
      ...orders!.plans.map((plan) => ({ api: orders!, plan })),
    ];
    const subscribed: { subscriptionId: string; apiKeyId: string }[] = [];
    for (const [p, { api, plan }] of plans.entries()) {
      for (let n = 0; n < PER_PLAN; n++) {
        const subscriptionId = `rev-${p}-${n}`;
        const active = await agent.subscriptions.service.subscribe({
          subscriptionId,
          apiId: api.id,
          planId: plan.id,
          application: { id: `app-${p}-${n}`, name: 'App' },
        });
        subscribed.push({ subscriptionId, apiKeyId: active.apiKeyId });
        // One death per handover: Lambda retries an asynchronous invoke twice, then dead-letters it.
        if (n === 0) crashOnce.add(subscriptionId);
      }
    }
    const since = await agent.relay.outbox.latestSeq();

    // Pets leaves the catalog by a tag edit (its REST API, stages and plans stay; the proxy keeps
    // REST API tags, which moto lacks); orders' usage plan is deleted. Both before the faults start:
    // the faults are for the agent's calls.
    await emu.apiGateway({ via: 'proxy' }).send(
      new TagResourceCommand({
        resourceArn: `arn:aws:apigateway:${emu.region}::/restapis/${pets!.source.restApiId}`,
        tags: { retired: 'yes' },
      }),
    );
    const gw = emu.apiGateway({ via: 'moto' });
    for (const { plan } of plans.filter(({ api }) => api.id === orders!.id)) {
      await gw.send(
        new UpdateUsagePlanCommand({
          usagePlanId: plan.usagePlanId,
          patchOperations: [
            {
              op: 'remove',
              path: '/apiStages',
              value: `${orders!.source.restApiId}:${orders!.source.stageName}`,
            },
          ],
        }),
      );
      await gw.send(new DeleteUsagePlanCommand({ usagePlanId: plan.usagePlanId }));
    }

    const seed = report.seed('revocations', 1515);
    emu.proxy.resetStats();
    emu.proxy.setFaults({ seed, rates: THIRTY_PERCENT_FAULTS, services: ['apigateway'] });
    try {
      // A run that ends partial under the faults removes nothing: the scheduler's next run does.
      for (let run = 0; run < 6; run++) {
        const { summary } = await agent.discovery.engine.run();
        await agent.idle();
        if (!summary.partial) break;
      }
    } finally {
      emu.proxy.setFaults(undefined);
      report.add({ faultsInjected: emu.proxy.stats.faults.total });
    }
    expect(emu.proxy.stats.faults.total, 'faults were injected').toBeGreaterThan(0);
    // A planned crash may not come: a reset after API Gateway deleted the key makes the retry find it
    // gone (404), a path without the step.
    expect(crashes, 'invocations died after DeleteApiKey').toBeGreaterThan(0);
    report.add({ faultsInjected: crashes });
    expect(await settle(subscribed, since)).toEqual({ survived: subscribed.length, keysLeft: 0, active: 0 });
    expect(agent.handlerErrors).toEqual([]);
  });
  it('finishes the revocations whose hand-over was dead-lettered, on the hourly finish-revocations', async () => {
    // Pets back in the catalog, subscribed again; then retired again while every revoke-keys attempt
    // fails (an outage of the subscriptions function): Lambda's two retries, then the dead-letter queue.
    const petsArn = (restApiId: string) => `arn:aws:apigateway:${emu.region}::/restapis/${restApiId}`;
    const seeded = agent.seeded.apis.pets!.restApiId;
    await emu
      .apiGateway({ via: 'proxy' })
      .send(new UntagResourceCommand({ resourceArn: petsArn(seeded), tagKeys: ['retired'] }));
    await agent.discovery.engine.run();
    const pets = (await agent.discovery.catalog.listAll()).find((api) => api.name === 'Pets');
    expect(pets, 'pets is federated again').toBeDefined();
    const subscribed: { subscriptionId: string; apiKeyId: string }[] = [];
    // Two a plan: the hand-over of a plan removal carries several ids.
    for (const [p, plan] of pets!.plans.entries()) {
      for (let n = 0; n < 2; n++) {
        const subscriptionId = `dlq-${p}-${n}`;
        const active = await agent.subscriptions.service.subscribe({
          subscriptionId,
          apiId: pets!.id,
          planId: plan.id,
          application: { id: `app-dlq-${p}-${n}`, name: 'App' },
        });
        subscribed.push({ subscriptionId, apiKeyId: active.apiKeyId });
      }
    }
    const since = await agent.relay.outbox.latestSeq();
    const errorsBefore = agent.handlerErrors.length;
    await emu
      .apiGateway({ via: 'proxy' })
      .send(new TagResourceCommand({ resourceArn: petsArn(seeded), tags: { retired: 'yes' } }));
    // Meanwhile the function may not delete keys (a policy edit that dropped `apigateway:DELETE`, put
    // right later): every attempt of the hand-over is refused.
    emu.proxy.setPolicy({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['apigateway:GET', 'apigateway:POST', 'apigateway:PATCH'],
          Resource: ['*'],
        },
      ],
    });
    const { summary } = await agent.discovery.engine.run();
    await agent.idle();
    emu.proxy.setPolicy(undefined);
    expect(summary.counts.plansRemoved).toBe(pets!.plans.length);
    const deadLettered = agent.handlerErrors.slice(errorsBefore);
    expect(deadLettered.length, 'hand-overs ended in the dead-letter queue').toBeGreaterThan(0);
    expect(deadLettered.every((e) => e.where === 'async subscriptions')).toBe(true);
    agent.handlerErrors.splice(errorsBefore);
    for (const { apiKeyId } of subscribed) expect(await keyExists(apiKeyId)).toBe(true);

    // An hour later, under the 30 % mix: the schedule's event, repeated until nothing is left to do.
    clockAheadMs = FINISH_REVOCATIONS_AFTER_MS + 60_000;
    const seed = report.seed('deadLettered', 1818);
    emu.proxy.resetStats();
    emu.proxy.setFaults({ seed, rates: THIRTY_PERCENT_FAULTS, services: ['apigateway'] });
    try {
      for (let hour = 0; hour < 6; hour++) {
        const out = (await agent.handlers.subscriptions({
          action: 'finish-revocations',
        })) as FinishRevocationsResult;
        if (out.failed.length === 0 && !out.more) break;
      }
    } finally {
      emu.proxy.setFaults(undefined);
      clockAheadMs = 0;
      report.add({ faultsInjected: emu.proxy.stats.faults.total + deadLettered.length });
    }
    expect(await settle(subscribed, since)).toEqual({ survived: subscribed.length, keysLeft: 0, active: 0 });
    expect(agent.handlerErrors).toEqual([]);
  });
});
