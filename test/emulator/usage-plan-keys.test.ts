import {
  type APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../support/emulator.js';

/** Key ids on a usage plan, following `position`. */
async function planKeyIds(client: APIGatewayClient, usagePlanId: string, limit?: number): Promise<string[]> {
  const ids: string[] = [];
  let position: string | undefined;
  do {
    const page = await client.send(new GetUsagePlanKeysCommand({ usagePlanId, limit, position }));
    ids.push(...(page.items ?? []).map((k) => k.id!));
    position = page.position;
  } while (position);
  return ids;
}

describe('fidelity proxy: GetUsagePlanKeys after DeleteApiKey', () => {
  let emu: Emulator;
  let usagePlanId: string;
  let keyIds: string[];
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    const raw = emu.apiGateway();
    usagePlanId = (await raw.send(new CreateUsagePlanCommand({ name: 'gold' }))).id!;
    keyIds = [];
    for (let i = 0; i < 12; i++) {
      const key = await raw.send(new CreateApiKeyCommand({ name: `key-${i}`, enabled: true }));
      await raw.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId: key.id!, keyType: 'API_KEY' }));
      keyIds.push(key.id!);
    }
  });

  it('moto itself keeps listing a deleted key on its usage plan (the gap the proxy hides)', async () => {
    const raw = emu.apiGateway();
    await raw.send(new DeleteApiKeyCommand({ apiKey: keyIds[0] }));
    expect(await planKeyIds(raw, usagePlanId)).toContain(keyIds[0]);
  });

  it('lists only keys that still exist, whether deleted through the proxy or directly at moto', async () => {
    const proxied = emu.apiGateway({ via: 'proxy' });
    await proxied.send(new DeleteApiKeyCommand({ apiKey: keyIds[0] }));
    await emu.apiGateway().send(new DeleteApiKeyCommand({ apiKey: keyIds[1] }));
    const listed = await planKeyIds(proxied, usagePlanId);
    expect(listed).not.toContain(keyIds[0]);
    expect(listed).not.toContain(keyIds[1]);
    expect(listed.sort()).toEqual(keyIds.slice(2).sort());
    // the key lookup is the proxy's own business: only the listing call is recorded
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual({
      DeleteApiKey: 1,
      GetUsagePlanKeys: 1,
    });
  });

  it('pages the remaining keys: full pages of live keys, no position after the last', async () => {
    const raw = emu.apiGateway();
    const deleted = keyIds.filter((_, i) => i % 3 === 0); // 4 of 12
    for (const apiKey of deleted) await raw.send(new DeleteApiKeyCommand({ apiKey }));
    const proxied = emu.apiGateway({ via: 'proxy' });
    const first = await proxied.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 5 }));
    expect(first.items).toHaveLength(5);
    const second = await proxied.send(
      new GetUsagePlanKeysCommand({ usagePlanId, limit: 5, position: first.position }),
    );
    expect(second.items).toHaveLength(3);
    expect(second.position).toBeUndefined();
    const listed = [...first.items!, ...second.items!].map((k) => k.id!);
    expect(listed.sort()).toEqual(keyIds.filter((id) => !deleted.includes(id)).sort());
  });
});
