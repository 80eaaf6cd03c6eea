/**
 * Issue 15 against the emulator: subscriptions under concurrency and change. Transient 409s from
 * API Gateway (the fidelity proxy's `conflict409` fault) are retried, never read as "already done".
 */
import { UpdateUsagePlanCommand } from '@aws-sdk/client-api-gateway';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it } from 'vitest';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import {
  CatalogRepository,
  DefinitionStore,
  DiscoveryEngine,
  discoverySettingsOf,
  EventType,
  LeaseRepository,
  ledgerPlanRevocations,
  noRelay,
  Outbox,
  parseAgentConfig,
  RunRepository,
  type SubscriptionRepository,
  SubscriptionService,
} from '../../layers/federation-core/src/index.js';
import { TEST_RETRY } from '../discovery/harness.js';
import type { Emulator } from '../support/emulator.js';
import { allKeys, codeOf, goldRequest, keysOnPlan, type World, withEmulatorWorld } from './support.js';

/** A promise and the function that settles it: an interleaving point a test holds and releases. */
function gate() {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('subscriptions under concurrency (issue 15)', () => {
  let emu: Emulator;
  let world: World;
  let service: SubscriptionService;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    service = world.service();
  });

  const request = (overrides: Record<string, unknown> = {}) => goldRequest(world, overrides);

  describe('409 ConflictException "concurrent modification" is transient', () => {
    it('never answers ACTIVE while CreateUsagePlanKey keeps answering it, and the repeat attaches the key', async () => {
      const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
      emu.proxy.setFaults({ seed: 15, rates: { conflict409: 1 }, operations: ['CreateUsagePlanKey'] });
      const code = await codeOf(service.subscribe(request(), { waitMs: 300, pollMs: 20 }));
      expect(code).toBe('AWS_ERROR');
      // Retried with backoff (4 attempts per call, calls repeated until the wait deadline).
      expect(emu.proxy.stats.faults.conflict409).toBeGreaterThan(1);
      const pending = await world.repo.get('sub-1');
      expect(pending).toMatchObject({ status: 'PENDING' });
      expect(pending?.apiKeyId).toBeDefined();
      expect(await keysOnPlan(world.raw, usagePlanId)).toEqual([]);

      emu.proxy.setFaults(undefined);
      const active = await service.subscribe(request());
      expect(active).toMatchObject({ status: 'ACTIVE', apiKeyId: pending?.apiKeyId });
      expect(await keysOnPlan(world.raw, usagePlanId)).toEqual([active.apiKeyId]);
      expect(await allKeys(world.raw)).toHaveLength(1);
    });

    it('ends ACTIVE with the key on its plan when some CreateUsagePlanKey calls collide', async () => {
      const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
      emu.proxy.setFaults({ seed: 7, rates: { conflict409: 0.6 }, operations: ['CreateUsagePlanKey'] });
      const results = await Promise.all(
        ['sub-1', 'sub-2', 'sub-3', 'sub-4'].map((subscriptionId) =>
          service.subscribe(request({ subscriptionId }), { pollMs: 20 }),
        ),
      );
      expect(emu.proxy.stats.faults.conflict409).toBeGreaterThan(0);
      expect((await keysOnPlan(world.raw, usagePlanId)).sort()).toEqual(
        results.map((r) => r.apiKeyId).sort(),
      );
    });

    it('does not turn a custom key value into a CONFLICT when CreateApiKey collides', async () => {
      const apiKey = 'CustomValue0123456789abcdef';
      emu.proxy.setFaults({ seed: 15, rates: { conflict409: 1 }, operations: ['CreateApiKey'] });
      expect(await codeOf(service.subscribe(request({ apiKey }), { waitMs: 300, pollMs: 20 }))).toBe(
        'AWS_ERROR',
      );
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'PENDING' });
      emu.proxy.setFaults(undefined);
      const active = await service.subscribe(request({ apiKey }));
      expect(active).toMatchObject({ status: 'ACTIVE', apiKey });
      expect(await keysOnPlan(world.raw, world.seeded.usagePlans.gold!.usagePlanId)).toEqual([
        active.apiKeyId,
      ]);
    });

    it('still reads a real "API Key already exists" as a CONFLICT for a custom value', async () => {
      const apiKey = 'CustomValue0123456789abcdef';
      await service.subscribe(request({ apiKey }));
      expect(await codeOf(service.subscribe(request({ subscriptionId: 'sub-2', apiKey })))).toBe('CONFLICT');
    });
  });

  describe('a subscribe racing the removal of its plan (issue 15.4)', () => {
    /** Discovery on the world's ledger; `catalog` lets a test hold its catalog writes. */
    const discovery = (catalog: CatalogRepository = world.catalog) => {
      const table = world.table;
      const agent = parseAgentConfig({});
      return new DiscoveryEngine(
        {
          apiGateway: (target) => world.factory.apiGateway(target),
          callerAccountId: async () =>
            (await world.factory.sts().send(new GetCallerIdentityCommand({}))).Account as string,
          catalog,
          outbox: new Outbox(table, { retentionDays: 7 }),
          definitions: new DefinitionStore(table),
          runs: new RunRepository(table),
          leases: new LeaseRepository(table),
          revocations: ledgerPlanRevocations(world.repo),
        },
        { ...discoverySettingsOf(agent, emu.region), retry: TEST_RETRY },
      );
    };
    /** The service, with its PENDING write held until `pending.open()`. */
    const heldService = (pending: { opened: Promise<void> }, reached: () => void) => {
      const subscriptions = Object.create(world.repo) as SubscriptionRepository;
      subscriptions.createPending = async (...args) => {
        reached();
        await pending.opened;
        return world.repo.createPending(...args);
      };
      return new SubscriptionService({
        catalog: new CatalogRepository(world.table),
        subscriptions,
        apiGateway: (target) => world.factory.apiGateway(target),
        sources: [{ name: 'default' }],
        keys: world.keys,
        retry: { baseDelayMs: 5, maxDelayMs: 50 },
      });
    };
    const removeGoldFromPets = () =>
      world.raw.send(
        new UpdateUsagePlanCommand({
          usagePlanId: world.seeded.usagePlans.gold!.usagePlanId,
          patchOperations: [
            { op: 'remove', path: '/apiStages', value: `${world.seeded.apis.pets!.restApiId}:prod` },
          ],
        }),
      );

    beforeEach(async () => {
      emu.proxy.setPolicy(undefined); // discovery's GETs and subscriptions' writes in one test
      await discovery().run(); // the catalog as discovery writes it (plans gold and silver on pets)
    });

    it('fails the subscribe whose PENDING write lands after discovery listed the plan and removed it', async () => {
      const pending = gate();
      const reached = gate();
      const subscribe = heldService(pending, reached.open).subscribe(request());
      await reached.opened; // the subscribe read the catalog: gold is a plan of pets
      await removeGoldFromPets();
      const run = await discovery().run();
      expect(run.summary.counts.plansRemoved).toBe(1);
      pending.open();
      expect(await codeOf(subscribe)).toBe('NOT_FOUND');
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'FAILED' });
      expect(await allKeys(world.raw), 'no key left behind').toEqual([]);
    });

    it('revokes the subscribe that still saw the plan when discovery writes the catalog after listing', async () => {
      const catalogWrite = gate();
      const writing = gate();
      const held = Object.create(world.catalog) as CatalogRepository;
      held.putApi = async (api) => {
        writing.open();
        await catalogWrite.opened;
        return world.catalog.putApi(api);
      };
      await removeGoldFromPets();
      const run = discovery(held).run();
      await writing.opened; // discovery listed gold's subscriptions (none) and appended its events
      const active = await service.subscribe(request());
      expect(active.status).toBe('ACTIVE'); // its re-check read the catalog before discovery's write
      catalogWrite.open();
      const { events } = await run;
      const revoked = events.filter((e) => e.event === EventType.SUBSCRIPTION_REVOKED);
      expect(revoked.map((e) => (e.payload as { subscriptionId: string }).subscriptionId)).toEqual(['sub-1']);
      expect(await world.repo.get('sub-1')).toMatchObject({
        status: 'REVOKED',
        revokeReason: 'PLAN_REMOVED',
      });
    });
  });

  describe('ledger round trips of a warm container (issue 15.7)', () => {
    const dynamoOps = () => emu.proxy.calls.list({ service: 'dynamodb' }).map((c) => c.operation);

    it('subscribe: the PENDING write first, the catalog re-read alongside CreateApiKey, two more writes', async () => {
      await service.subscribe(request());
      emu.proxy.resetCalls();
      await service.subscribe(request({ subscriptionId: 'sub-2' }));
      // No read before the PENDING write; the one read is the consistent re-check (issue 15.4), which
      // runs while CreateApiKey is in flight.
      expect(dynamoOps()).toEqual(['PutItem', 'GetItem', 'UpdateItem', 'UpdateItem']);
      const order = emu.proxy.calls
        .list()
        .filter((c) => c.operation !== 'GetItem')
        .map((c) => c.operation);
      expect(order).toEqual(['PutItem', 'CreateApiKey', 'UpdateItem', 'CreateUsagePlanKey', 'UpdateItem']);
    });

    it('unsubscribe: the revoke write first, no counter read, the event and the key-deleted mark in one transaction', async () => {
      const handler = createSubscriptionsHandler({
        service,
        outbox: new Outbox(
          { client: world.factory.dynamoDocument(), tableName: world.table.tableName },
          {
            retentionDays: 7,
          },
        ),
        publisher: noRelay,
      });
      await service.subscribe(request());
      await service.subscribe(request({ subscriptionId: 'sub-2' }));
      await handler({ action: 'unsubscribe', subscriptionId: 'sub-1' });
      emu.proxy.resetCalls();
      await handler({ action: 'unsubscribe', subscriptionId: 'sub-2' });
      expect(dynamoOps()).toEqual(['UpdateItem', 'TransactWriteItems']);
      expect(await world.repo.get('sub-2')).toMatchObject({ status: 'REVOKED', keyDeleted: true });
    });
  });
});
