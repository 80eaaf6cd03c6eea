import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createLedgerTable,
  EventType,
  KeyMode,
  type LedgerTable,
  type NewSubscription,
  Outbox,
  RevokeReason,
  SubscriptionRepository,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

function newSub(id: string, overrides: Partial<NewSubscription> = {}): NewSubscription {
  return {
    subscriptionId: id,
    apiId: 'api-1',
    planId: 'plan-1',
    usagePlanId: 'up-1',
    accountId: '123456789012',
    region: 'us-east-1',
    application: { id: 'app-1', name: 'App one' },
    keyMode: KeyMode.DERIVED,
    secretVersionId: 'v1',
    requestHash: 'hash-1',
    ...overrides,
  };
}

describe('SubscriptionRepository', () => {
  let emu: Emulator;
  let table: LedgerTable;
  let nowMs = Date.parse('2030-01-01T00:00:00Z');
  let repo: SubscriptionRepository;

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    const db = emu.dynamoDb();
    await createLedgerTable(db, 'ledger');
    table = {
      client: DynamoDBDocumentClient.from(db, { marshallOptions: { removeUndefinedValues: true } }),
      tableName: 'ledger',
    };
    nowMs = Date.parse('2030-01-01T00:00:00Z');
    repo = new SubscriptionRepository(table, { now: () => new Date(nowMs) });
  });

  it('creates a PENDING record holding the lease, only once per subscription id', async () => {
    const first = await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    const second = await repo.createPending(newSub('s1'), { owner: 'b', expiresAt: nowMs + 1000 });
    expect(first?.status).toBe('PENDING');
    expect(second).toBeUndefined();
    const stored = await repo.get('s1');
    expect(stored).toMatchObject({ status: 'PENDING', leaseOwner: 'a', attempt: 1, keyGeneration: 0 });
    expect(stored).not.toHaveProperty('pk');
  });

  it('refuses to take a live lease and takes an expired one', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    expect(await repo.acquire('s1', 'hash-1', { owner: 'b', expiresAt: nowMs + 2000 })).toBeUndefined();
    nowMs += 1001;
    const taken = await repo.acquire('s1', 'hash-1', { owner: 'b', expiresAt: nowMs + 2000 });
    expect(taken).toMatchObject({ leaseOwner: 'b', attempt: 2, status: 'PENDING' });
  });

  it('refuses a take-over with another request hash', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs - 1 });
    expect(await repo.acquire('s1', 'other', { owner: 'b', expiresAt: nowMs + 2000 })).toBeUndefined();
  });

  it('records the key id once, only for the lease owner, then activates', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    expect(await repo.recordKeyId('s1', 'b', 'k1')).toBeUndefined();
    expect((await repo.recordKeyId('s1', 'a', 'k1'))?.apiKeyId).toBe('k1');
    expect(await repo.recordKeyId('s1', 'a', 'k2')).toBeUndefined();
    expect(await repo.activate('s1', 'a', 'k2')).toBeUndefined();
    const active = await repo.activate('s1', 'a', 'k1');
    expect(active).toMatchObject({ status: 'ACTIVE', apiKeyId: 'k1' });
    expect(active).not.toHaveProperty('leaseOwner');
  });

  it('bumps the key generation and remembers the lost one', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    const bumped = await repo.bumpKeyGeneration('s1', 'a', 0);
    expect(bumped).toMatchObject({ keyGeneration: 1, lostKeyGenerations: [0] });
    expect(await repo.bumpKeyGeneration('s1', 'a', 0)).toBeUndefined();
  });

  it('fails a PENDING record and lets a later attempt take it back to PENDING', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    await repo.recordKeyId('s1', 'a', 'k1');
    const failed = await repo.fail('s1', 'a', { code: 'NOT_FOUND', message: 'gone' }, { keyDeleted: true });
    expect(failed).toMatchObject({ status: 'FAILED', failure: { code: 'NOT_FOUND' } });
    expect(failed).not.toHaveProperty('apiKeyId');
    const again = await repo.acquire('s1', 'hash-1', { owner: 'b', expiresAt: nowMs + 1000 });
    expect(again).toMatchObject({ status: 'PENDING', leaseOwner: 'b' });
    expect(again).not.toHaveProperty('failure');
  });

  it('revokes only from the expected states and not under a live lease unless forced', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    expect(await repo.revoke('s1', ['ACTIVE'], RevokeReason.UNSUBSCRIBED)).toBeUndefined();
    expect(await repo.revoke('s1', ['PENDING'], RevokeReason.UNSUBSCRIBED)).toBeUndefined();
    const forced = await repo.revoke('s1', ['PENDING'], RevokeReason.PLAN_REMOVED, { force: true });
    expect(forced).toMatchObject({ status: 'REVOKED', revokeReason: 'PLAN_REMOVED', keyDeleted: false });
    expect(await repo.recordKeyId('s1', 'a', 'k1')).toBeUndefined();
  });

  it('lists a revocation as a key to delete until its guarded event marks the key deleted, once', async () => {
    const outbox = new Outbox(table, { retentionDays: 7 });
    const event = { event: EventType.SUBSCRIPTION_REVOKED, payload: { subscriptionId: 's1' } };
    for (const id of ['s1', 's2']) {
      await repo.createPending(newSub(id), { owner: 'a', expiresAt: nowMs + 1000 });
      await repo.revoke(id, ['PENDING'], RevokeReason.PLAN_REMOVED, { force: true });
      nowMs += 1000;
    }
    const listed = (before: number, limit = 10) =>
      repo.listKeysToDelete(new Date(before).toISOString(), limit);
    expect(await listed(nowMs)).toEqual({ subscriptionIds: ['s1', 's2'], more: false });
    expect(await listed(nowMs, 1)).toEqual({ subscriptionIds: ['s1'], more: true });
    // Only those revoked before the cut-off.
    expect((await listed(nowMs - 1500)).subscriptionIds).toEqual(['s1']);
    const at = new Date(nowMs).toISOString();
    expect(await outbox.append([event], { guard: repo.keyDeletedGuard('s1', at) })).toHaveLength(1);
    expect(await repo.get('s1')).toMatchObject({ status: 'REVOKED', keyDeleted: true, keyDeletedAt: at });
    expect((await listed(nowMs)).subscriptionIds).toEqual(['s2']);
    // The guard holds no more: nothing appended, the record unchanged.
    expect(await outbox.append([event], { guard: repo.keyDeletedGuard('s1', 'later') })).toEqual([]);
    expect(await outbox.latestSeq()).toBe(1);
    expect(await repo.get('s1')).toMatchObject({ keyDeletedAt: at });
    // A live record is never marked.
    await repo.createPending(newSub('s3'), { owner: 'a', expiresAt: nowMs + 1000 });
    expect(await outbox.append([event], { guard: repo.keyDeletedGuard('s3', at) })).toEqual([]);
    expect(await repo.get('s3')).not.toHaveProperty('keyDeleted');
  });

  it('takes a sweep lease only from the seen status and a free lease, without touching updatedAt', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    const created = await repo.get('s1');
    nowMs += 500;
    expect(await repo.takeSweepLease(created!, { owner: 'sweep', expiresAt: nowMs + 1000 })).toBeUndefined();
    nowMs += 501;
    const failedSeen = { ...created!, status: 'FAILED' as const };
    expect(
      await repo.takeSweepLease(failedSeen, { owner: 'sweep', expiresAt: nowMs + 1000 }),
    ).toBeUndefined();
    const taken = await repo.takeSweepLease(created!, { owner: 'sweep', expiresAt: nowMs + 1000 });
    expect(taken).toMatchObject({ leaseOwner: 'sweep', attempt: 1, updatedAt: created!.updatedAt });
    nowMs += 1;
    expect(await repo.release('s1', 'a', { touch: false })).toBe(false);
    expect(await repo.release('s1', 'sweep', { touch: false })).toBe(true);
    const released = await repo.get('s1');
    expect(released).not.toHaveProperty('leaseOwner');
    expect(released?.updatedAt).toBe(created!.updatedAt);
  });

  it('marks a record swept: under the lease, or only while status and ACTIVE key are as seen', async () => {
    await repo.createPending(newSub('s1'), { owner: 'a', expiresAt: nowMs + 1000 });
    await repo.bumpKeyGeneration('s1', 'a', 0);
    await repo.recordKeyId('s1', 'a', 'k1');
    const active = await repo.activate('s1', 'a', 'k1');
    nowMs += 1000;
    expect(await repo.markSwept({ ...active!, apiKeyId: 'k2' }, undefined, 1)).toBeUndefined();
    expect(await repo.markSwept({ ...active!, status: 'REVOKED' }, undefined, 1)).toBeUndefined();
    const swept = await repo.markSwept(active!, undefined, 1);
    expect(swept).toMatchObject({ status: 'ACTIVE', apiKeyId: 'k1', sweptKeys: 1 });
    expect(swept?.sweptAt).toBe(new Date(nowMs).toISOString());
    expect(swept?.updatedAt).toBe(swept?.sweptAt);
    expect(swept).not.toHaveProperty('lostKeyGenerations');
    expect(swept).not.toHaveProperty('keyDeleted');
    expect((await repo.markSwept(swept!, undefined, 2))?.sweptKeys).toBe(3);

    await repo.createPending(newSub('s2'), { owner: 'a', expiresAt: nowMs - 1 });
    await repo.recordKeyId('s2', 'a', 'k9');
    const failed = await repo.fail('s2', 'a', { code: 'NOT_FOUND', message: 'gone' }, { keyDeleted: false });
    const leased = await repo.takeSweepLease(failed!, { owner: 'sweep', expiresAt: nowMs + 1000 });
    expect(await repo.markSwept(leased!, 'other', 1)).toBeUndefined();
    const sweptFailed = await repo.markSwept(leased!, 'sweep', 1);
    expect(sweptFailed).toMatchObject({ status: 'FAILED', sweptKeys: 1 });
    expect(sweptFailed).not.toHaveProperty('apiKeyId');
    expect(sweptFailed).not.toHaveProperty('leaseOwner');

    await repo.createPending(newSub('s3'), { owner: 'a', expiresAt: nowMs - 1 });
    const revoked = await repo.revoke('s3', ['PENDING'], RevokeReason.UNSUBSCRIBED);
    expect((await repo.markSwept(revoked!, undefined, 0))?.keyDeleted).toBe(true);
  });

  it('lists as sweep candidates the records that may have unheld keys and changed since their sweep', async () => {
    const lease = { owner: 'a', expiresAt: nowMs - 1 };
    await repo.createPending(newSub('pending'), lease);
    await repo.createPending(newSub('clean'), lease);
    await repo.recordKeyId('clean', 'a', 'k1');
    await repo.activate('clean', 'a', 'k1');
    await repo.createPending(newSub('lost'), lease);
    await repo.bumpKeyGeneration('lost', 'a', 0);
    await repo.recordKeyId('lost', 'a', 'k2');
    const lost = await repo.activate('lost', 'a', 'k2');
    await repo.createPending(newSub('revoked'), lease);
    await repo.revoke('revoked', ['PENDING'], RevokeReason.UNSUBSCRIBED);

    const all = await repo.listSweepCandidates(10);
    expect(all.truncated).toBe(false);
    expect(all.records.map((r) => r.subscriptionId).sort()).toEqual(['lost', 'pending', 'revoked']);
    expect((await repo.listSweepCandidates(2)).truncated).toBe(true);

    await repo.markSwept(lost!, undefined, 1);
    const after = await repo.listSweepCandidates(10);
    expect(after.records.map((r) => r.subscriptionId).sort()).toEqual(['pending', 'revoked']);
  });

  it('lists subscriptions by usage plan and account-region', async () => {
    const lease = { owner: 'a', expiresAt: nowMs };
    await repo.createPending(newSub('s1'), lease);
    await repo.createPending(newSub('s2'), lease);
    await repo.createPending(newSub('s3', { usagePlanId: 'up-2' }), lease);
    await repo.createPending(newSub('s4', { region: 'eu-west-1' }), lease);
    const listed = await repo.listByUsagePlan('123456789012', 'us-east-1', 'up-1');
    expect(listed.map((r) => r.subscriptionId).sort()).toEqual(['s1', 's2']);
  });
});
