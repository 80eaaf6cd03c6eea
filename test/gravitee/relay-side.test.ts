/**
 * The bridge's relay side against the real relay (the relay harness: handlers behind the local
 * WebSocket API, moto behind the fidelity proxy): the catalog it syncs, and the replies its command
 * handler gives to DISCOVER, SUBSCRIBE and UNSUBSCRIBE. The Gravitee side is in test/e2e/gravitee-bridge.test.ts.
 */
import { GetApiKeyCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, startBridge } from '../../gravitee/src/bridge.js';
import { type BridgeConfig, loadBridgeConfig } from '../../gravitee/src/config.js';
import type { ExchangeCommand } from '../../gravitee/src/exchange.js';
import { memoryLog } from '../../gravitee/src/log.js';
import { freePort } from '../../local/ports.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';

let emu: Emulator;
let world: RelayHarness;
let bridge: Bridge;
const log = memoryLog();
let n = 0;

const command = (type: string, payload: Record<string, unknown> = {}): ExchangeCommand => ({
  id: `cmd-${++n}`,
  type,
  payload,
});

beforeAll(async () => {
  emu = await startEmulator();
  world = await startRelayHarness(emu, TEST_AGENT);
  const first = await world.connect();
  const run = await first.command({ action: 'discover' }, 30_000);
  expect(run.status).toBe('SUCCEEDED');
  await first.close();
  // Gravitee is not there (a free port nobody listens on): the connector waits a minute between tries.
  const config = loadBridgeConfig([], {
    gravitee_integration_connector_ws_endpoints_0: `http://127.0.0.1:${await freePort()}/integration-controller`,
    gravitee_integration_connector_ws_headers_0_name: 'Authorization',
    gravitee_integration_connector_ws_headers_0_value: 'bearer gravitee-token',
    gravitee_integration_providers_0_type: 'aws-api-gateway',
    gravitee_integration_providers_0_integrationId: 'int-relay-side',
    FED_RELAY_URL: world.ws.url,
    FED_RELAY_TOKEN: world.token,
  }) as BridgeConfig;
  bridge = startBridge({
    config,
    log,
    backoff: { initialMs: 60_000, factor: 1, maxMs: 60_000 },
    relayKeepaliveMs: 200,
  });
  await bridge.synced;
}, 60_000);

afterAll(async () => {
  await bridge?.stop();
  await world?.stop();
  await emu?.stop();
});

describe('Gravitee bridge, relay side', () => {
  it('keeps the relay catalog and reports healthy while the relay link is up', () => {
    expect(bridge.relay.catalog.size).toBe(2);
    expect(bridge.health()).toEqual({ healthy: true, detail: 'relay link up, 2 APIs in the catalog' });
  });

  it('answers DISCOVER from that catalog: every API mapped, not partial, no pages', async () => {
    const { reply } = await bridge.handle(command('DISCOVER'));
    expect(reply.commandStatus).toBe('SUCCEEDED');
    const payload = reply.payload as { apis: Record<string, unknown>[]; isPartialDiscovery: boolean };
    expect(payload.isPartialDiscovery).toBe(false);
    expect(payload.apis.map((a) => `${a.name}/${a.version}`)).toEqual(['Orders/prod', 'Pets/prod']);
    const pets = payload.apis[1]!;
    const source = world.seeded.apis.pets!;
    expect(pets).toMatchObject({
      type: 'PROXY',
      connectionDetails: {
        restApiId: source.restApiId,
        stage: 'prod',
        region: emu.region,
        accountId: emu.accountId,
      },
      plans: [{ name: 'Gold', planSecurityType: 'API_KEY' }],
    });
    expect(pets.uniqueId).toBe(pets.id);
    expect(pets.pages).toBeUndefined();
  });

  const petsGold = () => {
    const pets = [...bridge.relay.catalog.values()].find((a) => a.name === 'Pets')!;
    return { apiId: pets.id, plan: pets.plans[0]! };
  };
  const subscribePayload = (subscriptionId: string, planId: string) => ({
    apiId: petsGold().apiId,
    subscription: {
      graviteeSubscriptionId: subscriptionId,
      graviteeApplicationId: 'app-1',
      graviteeApplicationName: 'Gravitee app',
      type: 'API_KEY',
      metadata: { planId },
    },
  });

  it('SUBSCRIBE returns the key that is on the plan’s usage plan; a repeat returns the same key; UNSUBSCRIBE deletes it', async () => {
    const { plan } = petsGold();
    const first = await bridge.handle(command('SUBSCRIBE', subscribePayload('gsub-1', plan.id)));
    expect(first.reply.commandStatus, first.reply.errorDetails).toBe('SUCCEEDED');
    const result = (first.reply.payload as { subscription: Record<string, unknown> }).subscription as {
      graviteeSubscriptionId: string;
      apiKey: string;
      metadata: Record<string, string>;
    };
    expect(result.graviteeSubscriptionId).toBe('gsub-1');
    expect(result.metadata).toMatchObject({
      usagePlanId: plan.usagePlanId,
      accountId: emu.accountId,
      region: emu.region,
    });
    const apiGateway = emu.apiGateway();
    const keys = await apiGateway.send(new GetUsagePlanKeysCommand({ usagePlanId: plan.usagePlanId }));
    expect(keys.items?.map((k) => k.id)).toContain(result.metadata.apiKeyId);
    const key = await apiGateway.send(
      new GetApiKeyCommand({ apiKey: result.metadata.apiKeyId, includeValue: true }),
    );
    expect(key.value).toBe(result.apiKey);

    const again = await bridge.handle(command('SUBSCRIBE', subscribePayload('gsub-1', plan.id)));
    expect((again.reply.payload as { subscription: { apiKey: string } }).subscription.apiKey).toBe(
      result.apiKey,
    );

    const gone = await bridge.handle(
      command('UNSUBSCRIBE', {
        ...subscribePayload('gsub-1', plan.id),
        subscription: { ...subscribePayload('gsub-1', plan.id).subscription, metadata: result.metadata },
      }),
    );
    expect(gone.reply).toMatchObject({ commandStatus: 'SUCCEEDED', type: 'UNSUBSCRIBE', payload: {} });
    await expect(
      apiGateway.send(new GetApiKeyCommand({ apiKey: result.metadata.apiKeyId })),
    ).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    apiGateway.destroy();
    expect(log.lines.join('\n')).not.toContain(result.apiKey);
  });

  it('answers a SUBSCRIBE the relay refuses with an ERROR carrying the typed code and message', async () => {
    const { reply } = await bridge.handle(command('SUBSCRIBE', subscribePayload('gsub-2', 'no-such-plan')));
    expect(reply.commandStatus).toBe('ERROR');
    expect(reply.errorDetails).toMatch(/^NOT_FOUND: /);
  });

  it('answers a SUBSCRIBE it cannot map with VALIDATION, without calling the relay', async () => {
    const { reply } = await bridge.handle(
      command('SUBSCRIBE', { apiId: 'x', subscription: { type: 'OAUTH' } }),
    );
    expect(reply.commandStatus).toBe('ERROR');
    expect(reply.errorDetails).toMatch(/^VALIDATION: /);
  });

  it('answers an unknown command type with NO_REPLY, as a Java channel without a handler does', async () => {
    const { reply } = await bridge.handle(command('PROMOTE_API', { x: 1 }));
    expect(reply).toMatchObject({ type: 'NO_REPLY', commandStatus: 'ERROR', commandId: `cmd-${n}` });
  });

  it('pings the relay while the link is up (API Gateway closes connections idle for 10 minutes)', async () => {
    const replies: unknown[] = [];
    const onReply = (reply: { payload?: unknown }) => {
      if ((reply.payload as { agentId?: string } | undefined)?.agentId) replies.push(reply);
    };
    bridge.relay.on('reply', onReply);
    const deadline = Date.now() + 10_000;
    while (replies.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    bridge.relay.off('reply', onReply);
    expect(replies.length).toBeGreaterThanOrEqual(2);
  });

  it('never logs the relay token or the Gravitee token', () => {
    const text = log.lines.join('\n');
    expect(text).not.toContain(world.token);
    expect(text).not.toContain('gravitee-token');
  });
});
