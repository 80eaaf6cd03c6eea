/**
 * `sync` of a catalog too big for one invocation: relay-command answers the command by invoking itself
 * asynchronously, and each invocation sends what its budget allows (here a chunk of 4 messages, so a
 * small catalog needs several) before handing the rest on. The client sees one uninterrupted snapshot or
 * replay, then `sync.completed`, then the reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventType, type FederatedApi } from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';

const CHUNK = 4;
const APIS = 13;
let emu: Emulator;
let world: RelayHarness;

beforeAll(async () => {
  emu = await startEmulator();
  world = await startRelayHarness(emu, { ...TEST_AGENT, syncChunkSize: CHUNK });
  const discovered = await world.connect();
  await discovered.command({ action: 'discover' }, 30_000);
  await discovered.close();
  const [template] = await world.relay.catalog.listAll();
  for (let i = 0; i < APIS; i++) {
    await world.relay.catalog.putApi({
      ...(template as FederatedApi),
      id: `bulk-${String(i).padStart(3, '0')}`,
    });
  }
});

afterAll(async () => {
  await world?.stop();
  await emu?.stop();
});

describe('sync across invocations', () => {
  it('sends a snapshot bigger than one invocation in id order, resumed by relay-command itself', async () => {
    const ids = (await world.relay.catalog.listAll()).map((a) => a.id).sort();
    expect(ids.length).toBe(APIS + 2);
    const client = await world.connect();
    await client.waitFor((m) => m.event === 'hello');
    const before = world.syncInvocations();
    const reply = await client.command({ action: 'sync' }, 30_000);
    expect(reply).toMatchObject({ status: 'SUCCEEDED', payload: { snapshot: true, sent: ids.length } });
    const upserted = client.messages.filter((m) => m.event === EventType.API_UPSERTED);
    expect(upserted.map((m) => (m.payload as FederatedApi).id)).toEqual(ids);
    // sync.completed once, after the last API and before the reply.
    const completed = client.messages.findIndex((m) => m.event === EventType.SYNC_COMPLETED);
    expect(client.messages.filter((m) => m.event === EventType.SYNC_COMPLETED)).toHaveLength(1);
    expect(completed).toBeGreaterThan(client.messages.indexOf(upserted.at(-1)!));
    expect(completed).toBeLessThan(client.messages.indexOf(reply));
    // One invocation per chunk (the first started by the command itself).
    expect(world.syncInvocations() - before).toBe(Math.ceil(ids.length / CHUNK));
    await client.close();
  });

  it('replays more missed events than one invocation sends, then the cursor', async () => {
    const since = await world.relay.outbox.latestSeq();
    const [template] = await world.relay.catalog.listAll();
    const appended = await world.relay.outbox.append(
      Array.from({ length: 9 }, (_, i) => ({
        event: EventType.API_UPSERTED,
        payload: { ...(template as FederatedApi), id: `late-${i}` },
      })),
    );
    const client = await world.connect();
    await client.waitFor((m) => m.event === 'hello');
    const before = world.syncInvocations();
    const reply = await client.command({ action: 'sync', since }, 30_000);
    expect(reply).toMatchObject({ status: 'SUCCEEDED', payload: { snapshot: false, sent: 9 } });
    const replayed = client.messages.filter((m) => m.event === EventType.API_UPSERTED).map((m) => m.seq);
    expect(replayed).toEqual(appended.map((e) => e.seq));
    expect(client.messages.find((m) => m.event === EventType.SYNC_COMPLETED)).toMatchObject({
      payload: { seq: appended.at(-1)?.seq, snapshot: false },
    });
    expect(world.syncInvocations() - before).toBe(Math.ceil(9 / CHUNK));
    await client.close();
  });
});
