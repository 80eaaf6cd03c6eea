import {
  CreateStageCommand,
  DeleteStageCommand,
  DeleteUsagePlanCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateUsagePlanCommand,
} from '@aws-sdk/client-api-gateway';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteApi, redeployStage, type SeedResult, seed } from '../../emulator/seeder.js';
import {
  discoveryLeaseName,
  EventType,
  federatedApiId,
  type OutboxEvent,
  parseChangeEvent,
  processChangeBatch,
} from '../../layers/federation-core/src/index.js';
import { cloudTrailEvent } from '../../local/change-tap.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type DiscoveryHarness, discoveryHarness } from './harness.js';

/** a: prod on gold and silver; b: prod on silver, dev on none; c: prod on no plan. */
const SEED = {
  apis: [
    { key: 'a', name: 'Alpha', tags: { visibility: 'public' }, stages: ['prod'] },
    { key: 'b', name: 'Beta', tags: { visibility: 'internal' }, stages: ['dev', 'prod'] },
    { key: 'c', name: 'Gamma', tags: { visibility: 'public' }, stages: ['prod'] },
  ],
  usagePlans: [
    { key: 'gold', name: 'Gold', stages: [{ api: 'a', stage: 'prod' }] },
    {
      key: 'silver',
      name: 'Silver',
      stages: [
        { api: 'a', stage: 'prod' },
        { api: 'b', stage: 'prod' },
      ],
    },
  ],
};

describe('change events: targeted discovery against the emulator', () => {
  let emu: Emulator;
  let seeded: SeedResult;
  let h: DiscoveryHarness;
  const publisher = { published: [] as OutboxEvent[], publishEvents: async (e: OutboxEvent[]) => e };

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    seeded = await seed(emu.apiGateway(), SEED);
    h = await discoveryHarness(emu);
    await h.engine.run(); // the catalog a full run left
    emu.proxy.resetCalls();
  });

  const restApiId = (key: string) => seeded.apis[key]!.restApiId;
  const planId = (key: string) => seeded.usagePlans[key]!.usagePlanId;
  const idOf = (key: string, stage: string) =>
    federatedApiId(emu.accountId, emu.region, restApiId(key), stage);
  const calls = () => emu.proxy.calls.byOperation({ service: 'apigateway' });
  const event = (eventName: string, requestParameters: Record<string, unknown>) =>
    cloudTrailEvent({ accountId: emu.accountId, region: emu.region, eventName, requestParameters });
  let n = 0;
  const batch = (...events: Record<string, unknown>[]) =>
    events.map((e) => ({ messageId: `m${++n}`, body: JSON.stringify(e) }));
  const process = (engine = h.engine, ...events: Record<string, unknown>[]) =>
    processChangeBatch({ engine, publisher }, batch(...events));
  /** After a targeted run, a full run finds nothing left to do: the targeted run did what it would. */
  const expectFullRunAgrees = async (engine = h.engine) => {
    const { events, summary } = await engine.run();
    expect(summary.counts.upserted + summary.counts.removed + summary.counts.plansRemoved).toBe(0);
    expect(events).toEqual([]);
  };
  const appended = async (since: number) => (await h.outbox.listAfter(since)).map((e) => e.event);

  it('redeploy: re-reads only that API (4 calls) and upserts only the redeployed stage', async () => {
    const seq = await h.outbox.latestSeq();
    await redeployStage(emu.apiGateway(), restApiId('a'), 'prod');
    const result = await process(
      h.engine,
      event('CreateDeployment', { restApiId: restApiId('a'), createDeploymentInput: {} }),
    );
    expect(result.batchItemFailures).toEqual([]);
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1, GetStages: 1, GetExport: 1 });
    expect(result.summary?.targeted).toBe(true);
    expect(result.summary?.counts).toMatchObject({ upserted: 1, unchanged: 0, removed: 0, exported: 1 });
    expect(await appended(seq)).toEqual([EventType.API_UPSERTED, EventType.DISCOVERY_COMPLETED]);
    const [upserted] = (await h.outbox.listAfter(seq)).filter((e) => e.event === EventType.API_UPSERTED);
    expect((upserted!.payload as { id: string }).id).toBe(idOf('a', 'prod'));
    await expectFullRunAgrees();
  });

  it('new stage on a usage plan: the stage and the plan change in one batch, one run', async () => {
    const deploymentId = seeded.apis.a!.deploymentId!;
    const gw = emu.apiGateway();
    await gw.send(new CreateStageCommand({ restApiId: restApiId('a'), stageName: 'v2', deploymentId }));
    const patch = [{ op: 'add' as const, path: '/apiStages', value: `${restApiId('a')}:v2` }];
    await gw.send(new UpdateUsagePlanCommand({ usagePlanId: planId('gold'), patchOperations: patch }));
    const result = await process(
      h.engine,
      event('CreateStage', { restApiId: restApiId('a'), createStageInput: { stageName: 'v2' } }),
      event('UpdateUsagePlan', {
        usagePlanId: planId('gold'),
        updateUsagePlanInput: { patchOperations: patch },
      }),
    );
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1, GetStages: 1, GetExport: 1 });
    expect(result.summary?.counts).toMatchObject({ upserted: 1, removed: 0 });
    expect(await h.catalog.getApi(idOf('a', 'v2'))).toMatchObject({
      plans: [{ usagePlanId: planId('gold') }],
    });
    await expectFullRunAgrees();
  });

  it('stage deleted: removed once API Gateway no longer lists it; the other stage stays', async () => {
    const all = h.withConfig({ acceptApiWithoutUsagePlan: true });
    await all.run();
    emu.proxy.resetCalls();
    await emu.apiGateway().send(new DeleteStageCommand({ restApiId: restApiId('b'), stageName: 'dev' }));
    const seq = await h.outbox.latestSeq();
    const result = await process(all, event('DeleteStage', { restApiId: restApiId('b'), stageName: 'dev' }));
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1, GetStages: 1 });
    expect(result.summary?.counts).toMatchObject({ removed: 1, unchanged: 1 });
    expect(await appended(seq)).toEqual([EventType.API_REMOVED, EventType.DISCOVERY_COMPLETED]);
    expect(await h.catalog.getApi(idOf('b', 'dev'))).toBeUndefined();
    expect(await h.catalog.getApi(idOf('b', 'prod'))).toBeDefined();
    await expectFullRunAgrees(all);
  });

  it('REST API deleted: GetRestApi answers NotFound, its entries go; the other APIs are untouched', async () => {
    await deleteApi(emu.apiGateway(), restApiId('a'));
    const result = await process(h.engine, event('DeleteRestApi', { restApiId: restApiId('a') }));
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1 });
    expect(result.summary?.counts).toMatchObject({ removed: 1, plansRemoved: 2 });
    expect((await h.catalog.listAll()).map((api) => api.id)).toEqual([idOf('b', 'prod')]);
  });

  it('an event for an API that did not change, or that failed (errorCode), removes nothing', async () => {
    const failed = event('DeleteRestApi', { restApiId: restApiId('a') });
    (failed.detail as Record<string, unknown>).errorCode = 'NotFoundException';
    const result = await process(
      h.engine,
      failed,
      event('UpdateStage', { restApiId: restApiId('b'), stageName: 'prod' }),
    );
    expect(result.ignored).toBe(1);
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1, GetStages: 1 });
    expect(result.summary?.counts).toMatchObject({ upserted: 0, unchanged: 1, removed: 0 });
    expect(await h.catalog.listAll()).toHaveLength(2);
  });

  it('tag changed under a label filter: an API enters and another leaves the catalog', async () => {
    const filtered = h.withConfig({ labels: { include: ['visibility=public'], exclude: [] } });
    await filtered.run();
    expect((await h.catalog.listAll()).map((a) => a.id).sort()).toEqual([idOf('a', 'prod')]);
    // REST API tags through the proxy (moto tags only stages; the proxy keeps REST API tags as AWS does)
    const gw = emu.apiGateway({ via: 'proxy' });
    const arn = (key: string) => `arn:aws:apigateway:${emu.region}::/restapis/${restApiId(key)}`;
    await gw.send(new TagResourceCommand({ resourceArn: arn('b'), tags: { visibility: 'public' } }));
    await gw.send(new UntagResourceCommand({ resourceArn: arn('a'), tagKeys: ['visibility'] }));
    emu.proxy.resetCalls();
    const seq = await h.outbox.latestSeq();
    const result = await process(
      filtered,
      event('TagResource', { resourceArn: arn('b'), tagResourceInput: { tags: { visibility: 'public' } } }),
      event('UntagResource', { resourceArn: arn('a'), tagKeys: ['visibility'] }),
    );
    // a is filtered out before its stages are read; b is read and exported
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 2, GetStages: 1, GetExport: 1 });
    expect(result.summary?.counts).toMatchObject({ upserted: 1, removed: 1 });
    expect((await appended(seq)).sort()).toEqual(
      [
        EventType.API_UPSERTED,
        EventType.API_REMOVED,
        EventType.PLAN_REMOVED,
        EventType.PLAN_REMOVED,
        EventType.DISCOVERY_COMPLETED,
      ].sort(),
    );
    expect((await h.catalog.listAll()).map((a) => a.id)).toEqual([idOf('b', 'prod')]);
    await expectFullRunAgrees(filtered);
  });

  it('usage plan detached and attached: the plans are re-read, only APIs whose attachments changed', async () => {
    const gw = emu.apiGateway();
    const detach = [{ op: 'remove' as const, path: '/apiStages', value: `${restApiId('a')}:prod` }];
    await gw.send(new UpdateUsagePlanCommand({ usagePlanId: planId('silver'), patchOperations: detach }));
    const attach = [{ op: 'add' as const, path: '/apiStages', value: `${restApiId('b')}:prod` }];
    await gw.send(new UpdateUsagePlanCommand({ usagePlanId: planId('gold'), patchOperations: attach }));
    const seq = await h.outbox.latestSeq();
    // The events name no REST API for the detach (a patch of another plan): the catalog says a and b changed.
    const result = await process(
      h.engine,
      event('UpdateUsagePlan', {
        usagePlanId: planId('silver'),
        updateUsagePlanInput: { patchOperations: detach },
      }),
      event('UpdateUsagePlan', {
        usagePlanId: planId('gold'),
        updateUsagePlanInput: { patchOperations: attach },
      }),
    );
    // no export: the deployments did not change
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 2, GetStages: 2 });
    expect(result.summary?.counts).toMatchObject({ upserted: 2, plansRemoved: 1, exported: 0 });
    expect((await appended(seq)).sort()).toEqual(
      [
        EventType.API_UPSERTED,
        EventType.API_UPSERTED,
        EventType.PLAN_REMOVED,
        EventType.DISCOVERY_COMPLETED,
      ].sort(),
    );
    const b = await h.catalog.getApi(idOf('b', 'prod'));
    expect(b?.plans.map((p) => p.usagePlanId).sort()).toEqual([planId('gold'), planId('silver')].sort());
    await expectFullRunAgrees();
  });

  it('usage plan deleted: its plans leave the APIs it covered; an API left on no plan is removed', async () => {
    const gw = emu.apiGateway();
    const detach = [
      { op: 'remove' as const, path: '/apiStages', value: `${restApiId('a')}:prod` },
      { op: 'remove' as const, path: '/apiStages', value: `${restApiId('b')}:prod` },
    ];
    await gw.send(new UpdateUsagePlanCommand({ usagePlanId: planId('silver'), patchOperations: detach }));
    await gw.send(new DeleteUsagePlanCommand({ usagePlanId: planId('silver') }));
    const seq = await h.outbox.latestSeq();
    const result = await process(h.engine, event('DeleteUsagePlan', { usagePlanId: planId('silver') }));
    // b is on no plan any more: dropped before GetStages
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 2, GetStages: 1 });
    expect(result.summary?.counts).toMatchObject({ upserted: 1, removed: 1, plansRemoved: 2 });
    expect((await appended(seq)).filter((e) => e === EventType.PLAN_REMOVED)).toHaveLength(2);
    expect((await h.catalog.listAll()).map((a) => a.id)).toEqual([idOf('a', 'prod')]);
    await expectFullRunAgrees();
  });

  it('a burst of ten calls on one API is one targeted run reading that API once', async () => {
    await redeployStage(emu.apiGateway(), restApiId('a'), 'prod');
    const burst = Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0
        ? event('CreateDeployment', { restApiId: restApiId('a') })
        : event('UpdateStage', { restApiId: restApiId('a'), stageName: 'prod' }),
    );
    const before = (await h.runs.recent(100)).length;
    const result = await process(h.engine, ...burst);
    expect(result.batchItemFailures).toEqual([]);
    expect((await h.runs.recent(100)).length).toBe(before + 1);
    expect(calls()).toEqual({ GetUsagePlans: 1, GetRestApi: 1, GetStages: 1, GetExport: 1 });
  });

  it('events during a full run: re-queued while the lease is held, done once it is released', async () => {
    const lease = discoveryLeaseName(emu.accountId, emu.region);
    expect(await h.leases.acquire(lease, 'full-run', 60_000)).toBeDefined();
    await redeployStage(emu.apiGateway(), restApiId('a'), 'prod');
    const messages = batch(event('CreateDeployment', { restApiId: restApiId('a') }));
    const busy = await processChangeBatch({ engine: h.engine, publisher }, messages);
    expect(busy.batchItemFailures).toEqual([{ itemIdentifier: messages[0]!.messageId }]);
    expect(calls()).toEqual({});
    await h.leases.release(lease, 'full-run');
    const done = await processChangeBatch({ engine: h.engine, publisher }, messages);
    expect(done.batchItemFailures).toEqual([]);
    expect(done.summary?.counts.upserted).toBe(1);
  });

  it('ignores account-regions of no configured source and events of other services', async () => {
    const other = cloudTrailEvent({
      accountId: '999988887777',
      region: emu.region,
      eventName: 'CreateDeployment',
      requestParameters: { restApiId: restApiId('a') },
    });
    const notApiGateway = { ...event('CreateDeployment', {}), source: 'aws.lambda' };
    const result = await process(h.engine, other, notApiGateway);
    expect(result.batchItemFailures).toEqual([]);
    expect(result.ignored).toBe(1);
    expect(calls()).toEqual({});
  });

  it('a throttled targeted run is retried by the queue, then dead-lettered', async () => {
    const sqs = new SQSClient(emu.clientConfig({ via: 'moto' }));
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `changes-dlq-${n}` }));
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    const maxReceiveCount = 2;
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: `changes-${n}`,
        Attributes: {
          VisibilityTimeout: '0',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
        },
      }),
    );
    await redeployStage(emu.apiGateway(), restApiId('a'), 'prod');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.QueueUrl,
        MessageBody: JSON.stringify(event('CreateDeployment', { restApiId: restApiId('a') })),
      }),
    );
    emu.proxy.setFaults({ seed: 1, rates: { throttle429: 1 } });
    // What the event source mapping does: receive, invoke, delete what did not fail.
    let receives = 0;
    for (let i = 0; i < maxReceiveCount + 2; i++) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10 }),
      );
      const messages = (out.Messages ?? []).map((m) => ({
        messageId: m.MessageId!,
        body: m.Body!,
        handle: m.ReceiptHandle!,
      }));
      if (messages.length === 0) continue;
      receives++;
      const answer = await processChangeBatch({ engine: h.engine, publisher }, messages);
      const failed = new Set(answer.batchItemFailures.map((f) => f.itemIdentifier));
      expect(failed.size).toBe(1); // throttled after the reader's retries: not done
      for (const m of messages.filter((m) => !failed.has(m.messageId))) {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.QueueUrl, ReceiptHandle: m.handle }));
      }
    }
    emu.proxy.setFaults(undefined);
    expect(receives).toBe(maxReceiveCount);
    const dead = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10 }),
    );
    expect(dead.Messages).toHaveLength(1);
    expect(parseChangeEvent(JSON.parse(dead.Messages![0]!.Body!))?.restApiIds).toEqual([restApiId('a')]);
    // nothing was removed or changed by the failed runs; the next run repairs the change
    expect(await h.catalog.listAll()).toHaveLength(2);
    sqs.destroy();
  });
});
