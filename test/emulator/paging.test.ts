import { GetRestApisCommand, GetUsagePlansCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSeed, seed } from '../../emulator/seeder.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

describe('fidelity proxy: API Gateway paging', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
    await seed(emu.apiGateway(), generateSeed({ apis: 600, stages: ['prod'], withoutPlan: 570 }));
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('lists 600 REST APIs with limit 500 in exactly two pages', async () => {
    const client = emu.apiGateway({ via: 'proxy' });
    emu.proxy.resetCalls();
    const ids: string[] = [];
    let position: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new GetRestApisCommand({ limit: 500, position }));
      pages++;
      ids.push(...(page.items ?? []).map((a) => a.id!));
      position = page.position;
      if (pages === 1) expect(page.items).toHaveLength(500);
    } while (position);
    expect(pages).toBe(2);
    expect(ids).toHaveLength(600);
    expect(new Set(ids).size).toBe(600);
    expect(emu.proxy.calls.countOf('GetRestApis')).toBe(2);
    // stable order: a second listing returns the same sequence
    const again = await client.send(new GetRestApisCommand({ limit: 500 }));
    expect(again.items?.map((a) => a.id)).toEqual(ids.slice(0, 500));
  });

  it('answers 25 items by default, with an opaque position', async () => {
    const client = emu.apiGateway({ via: 'proxy' });
    const page = await client.send(new GetRestApisCommand({}));
    expect(page.items).toHaveLength(25);
    expect(page.position).toBeTypeOf('string');
    expect(page.position).not.toMatch(/^\d+$/);
    const next = await client.send(new GetRestApisCommand({ position: page.position }));
    expect(next.items).toHaveLength(25);
    expect(next.items![0]!.id).not.toBe(page.items![0]!.id);
  });

  it('pages usage plans too', async () => {
    const client = emu.apiGateway({ via: 'proxy' });
    const first = await client.send(new GetUsagePlansCommand({ limit: 20 }));
    expect(first.items).toHaveLength(20);
    const second = await client.send(new GetUsagePlansCommand({ limit: 20, position: first.position }));
    expect(second.items).toHaveLength(10);
    expect(second.position).toBeUndefined();
  });

  it('refuses a limit above 500 and a forged position with BadRequestException', async () => {
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    await expect(client.send(new GetRestApisCommand({ limit: 501 }))).rejects.toMatchObject({
      name: 'BadRequestException',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(client.send(new GetRestApisCommand({ position: 'not-a-token' }))).rejects.toMatchObject({
      name: 'BadRequestException',
    });
    expect(emu.proxy.stats.rejected).toBe(2);
  });

  it('moto itself ignores the limit (why the proxy exists)', async () => {
    const direct = await emu.apiGateway().send(new GetRestApisCommand({ limit: 500 }));
    expect(direct.items!.length).toBe(600);
  });
});
