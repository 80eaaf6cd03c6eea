/**
 * The fidelity proxy in front of an endpoint that is not a bare moto: a user's emulator that pages its list
 * calls, throttles, and answers the `oas30` export itself. Here that endpoint is a second fidelity proxy in
 * front of moto (paging on, or only recording and throttling with `fixes: false`); the proxy under test
 * sits in front of it. Its moto fixes must follow the upstream's paging to the end, pass the upstream's
 * errors and throttles through as they came, and leave alone what the upstream already answers like AWS.
 */
import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateRestApiCommand,
  CreateUsagePlanCommand,
  CreateUsagePlanKeyCommand,
  GetExportCommand,
  GetRestApisCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FidelityProxy, startFidelityProxy } from '../../emulator/proxy.js';
import { seed } from '../../emulator/seeder.js';
import { mapPool } from '../../layers/federation-core/src/pool.js';
import { type Emulator, startEmulator, TEST_CREDENTIALS, TEST_REGION } from '../support/emulator.js';

/** moto, and in front of it the user-style endpoint `emu.proxy` (paging and exports like API Gateway). */
let emu: Emulator;
/** A recording, throttling endpoint in front of the same moto that fixes nothing (a plain moto to the proxy). */
let plain: FidelityProxy;
/** The proxy under test, in front of emu.proxy. */
let front: FidelityProxy;
/** The proxy under test, in front of `plain`. */
let frontOfPlain: FidelityProxy;

const client = (endpoint: string) =>
  new APIGatewayClient({
    endpoint,
    region: TEST_REGION,
    credentials: { ...TEST_CREDENTIALS },
    maxAttempts: 1,
  });

beforeAll(async () => {
  emu = await startEmulator();
  plain = await startFidelityProxy({ target: emu.motoEndpoint, fixes: false });
  front = await startFidelityProxy({ target: emu.endpoint });
  frontOfPlain = await startFidelityProxy({ target: plain.endpoint });
});
afterAll(async () => {
  await frontOfPlain?.stop();
  await front?.stop();
  await plain?.stop();
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
  plain.resetAll();
  front.resetAll();
  frontOfPlain.resetAll();
});

describe('the proxy in front of an endpoint that pages', () => {
  it('follows the upstream paging to the end: 510 REST APIs, the last one created included', async () => {
    const raw = emu.apiGateway();
    const names = Array.from({ length: 510 }, (_, i) => `api-${String(i).padStart(3, '0')}`);
    await mapPool(names, 8, (name) => raw.send(new CreateRestApiCommand({ name })));
    const api = client(front.endpoint);
    const listed: string[] = [];
    let position: string | undefined;
    do {
      const page = await api.send(new GetRestApisCommand({ limit: 500, position }));
      listed.push(...(page.items ?? []).map((item) => item.name!));
      position = page.position;
    } while (position);
    expect(listed).toHaveLength(510);
    expect(new Set(listed)).toEqual(new Set(names));
    // the upstream was read with its own paging: 500 + 10, twice (one read per client page)
    expect(emu.proxy.calls.countOf('GetRestApis')).toBe(4);
    expect(emu.proxy.calls.count({ outcome: 'rejected' })).toBe(0);
  }, 60_000);

  it('keeps usage plan keys whose API key is past the first page of the upstream GetApiKeys', async () => {
    const raw = emu.apiGateway();
    const plan = await raw.send(new CreateUsagePlanCommand({ name: 'plan' }));
    const keys = await mapPool(
      Array.from({ length: 30 }, (_, i) => `key-${i}`),
      8,
      (name) => raw.send(new CreateApiKeyCommand({ name, enabled: true })),
    );
    await mapPool(keys, 8, (key) =>
      raw.send(new CreateUsagePlanKeyCommand({ usagePlanId: plan.id!, keyId: key.id!, keyType: 'API_KEY' })),
    );
    const out = await client(front.endpoint).send(
      new GetUsagePlanKeysCommand({ usagePlanId: plan.id!, limit: 500 }),
    );
    expect(out.items?.map((item) => item.id).sort()).toEqual(keys.map((key) => key.id).sort());
  });
});

describe('the proxy in front of an endpoint that throttles', () => {
  it.each(['GetStage', 'GetDeployment', 'GetModels'])(
    'an upstream 429 with Retry-After on its %s lookup comes back as that 429, not a 404',
    async (operation) => {
      const seeded = await seed(emu.apiGateway(), {
        apis: [{ key: 'a', name: 'A', stages: ['prod'] }],
      });
      plain.setFaults({ seed: 1, rates: { throttle429RetryAfter: 1 }, operations: [operation] });
      const error = await client(frontOfPlain.endpoint)
        .send(
          new GetExportCommand({
            restApiId: seeded.apis.a!.restApiId,
            stageName: 'prod',
            exportType: 'oas30',
            accepts: 'application/json',
          }),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toMatchObject({
        name: 'TooManyRequestsException',
        $metadata: { httpStatusCode: 429 },
        $response: { headers: { 'retry-after': '1' } },
      });
      expect(plain.calls.count({ outcome: 'fault' })).toBe(1);
    },
  );

  it('an upstream 429 on a list page comes back as that 429', async () => {
    await emu.apiGateway().send(new CreateRestApiCommand({ name: 'one' }));
    plain.setFaults({ seed: 1, rates: { throttle429RetryAfter: 1 }, operations: ['GetRestApis'] });
    await expect(client(frontOfPlain.endpoint).send(new GetRestApisCommand({}))).rejects.toMatchObject({
      name: 'TooManyRequestsException',
      $metadata: { httpStatusCode: 429 },
    });
  });

  it('still answers 404 NotFoundException for a stage the upstream does not have', async () => {
    const seeded = await seed(emu.apiGateway(), { apis: [{ key: 'a', name: 'A', stages: ['prod'] }] });
    await expect(
      client(frontOfPlain.endpoint).send(
        new GetExportCommand({ restApiId: seeded.apis.a!.restApiId, stageName: 'nope', exportType: 'oas30' }),
      ),
    ).rejects.toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });
  });
});

describe('the proxy in front of an endpoint that answers oas30 itself', () => {
  it('passes the upstream export through unchanged, with no lookups of its own', async () => {
    const seeded = await seed(emu.apiGateway(), { apis: [{ key: 'a', name: 'A', stages: ['prod'] }] });
    const request = {
      restApiId: seeded.apis.a!.restApiId,
      stageName: 'prod',
      exportType: 'oas30',
      accepts: 'application/json',
    };
    const direct = await client(emu.endpoint).send(new GetExportCommand(request));
    emu.proxy.resetCalls();
    const through = await client(front.endpoint).send(new GetExportCommand(request));
    expect(Buffer.from(through.body!).toString('utf8')).toBe(Buffer.from(direct.body!).toString('utf8'));
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual({ GetExport: 1 });
  });
});
