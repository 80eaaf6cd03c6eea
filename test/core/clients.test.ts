import { AwsClientFactory, CONNECTIONS_MAX_ATTEMPTS } from '@apigw-federation/core';
import { GetRestApisCommand } from '@aws-sdk/client-api-gateway';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { Pluggable } from '@aws-sdk/types';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator, TEST_CREDENTIALS } from '../support/emulator.js';

describe('AwsClientFactory', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });

  /** A plugin of the STS client that assumes the roles: records each request's input. */
  function recording(requests: unknown[]): Pluggable<object, object> {
    return {
      applyToStack: (stack) =>
        stack.add(
          (next) => async (args) => {
            requests.push(args.input);
            return next(args);
          },
          { step: 'initialize', name: 'recordAssumeRole', override: true },
        ),
    };
  }

  function factory(): AwsClientFactory {
    return new AwsClientFactory({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: TEST_CREDENTIALS,
    });
  }

  it('creates one API Gateway client per account-region and reuses it', () => {
    const clients = factory();
    const a = clients.apiGateway({ region: 'eu-west-1' });
    expect(clients.apiGateway({ region: 'eu-west-1' })).toBe(a);
    expect(clients.apiGateway({ region: 'us-east-1' })).not.toBe(a);
    expect(
      clients.apiGateway({ region: 'eu-west-1', roleArn: 'arn:aws:iam::111122223333:role/fed' }),
    ).not.toBe(a);
  });

  it('sends calls to the endpoint override, signed for the target region', async () => {
    await factory()
      .apiGateway({ region: 'eu-west-1' })
      .send(new GetRestApisCommand({ limit: 500 }));
    expect(emu.proxy.calls.byAccountRegion({ operation: 'GetRestApis' })).toEqual({
      [`${emu.accountId}/eu-west-1`]: 1,
    });
  });

  it('reaches another account through sts:AssumeRole and caches the credentials until near expiry', async () => {
    const clients = factory();
    const roleArn = 'arn:aws:iam::111122223333:role/apigw-federation-member';
    const apiGateway = clients.apiGateway({ region: 'eu-central-1', accountId: '111122223333', roleArn });
    await apiGateway.send(new GetRestApisCommand({ limit: 500 }));
    await apiGateway.send(new GetRestApisCommand({ limit: 500 }));

    expect(emu.proxy.calls.countOf('AssumeRole')).toBe(1);
    expect(emu.proxy.calls.byAccountRegion({ operation: 'GetRestApis' })).toEqual({
      '111122223333/eu-central-1': 2,
    });
  });

  it('assumes a role once for all the regions of a source', async () => {
    const clients = factory();
    const roleArn = 'arn:aws:iam::111122223333:role/fed';
    await clients.apiGateway({ region: 'eu-central-1', roleArn }).send(new GetRestApisCommand({}));
    await clients.apiGateway({ region: 'eu-west-1', roleArn }).send(new GetRestApisCommand({}));
    expect(emu.proxy.calls.countOf('AssumeRole')).toBe(1);
    expect(emu.proxy.calls.byAccountRegion({ operation: 'GetRestApis' })).toEqual({
      '111122223333/eu-central-1': 1,
      '111122223333/eu-west-1': 1,
    });
  });

  it('narrows an assumed-role session with the configured session policy', async () => {
    const sessionPolicy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['apigateway:GET'], Resource: ['arn:aws:apigateway:*::/restapis'] },
      ],
    });
    const requests: unknown[] = [];
    const clients = new AwsClientFactory({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: TEST_CREDENTIALS,
      assumeRoleSessionPolicy: sessionPolicy,
      assumeRolePlugins: [recording(requests)],
    });
    await clients
      .apiGateway({ region: 'eu-west-1', roleArn: 'arn:aws:iam::111122223333:role/fed' })
      .send(new GetRestApisCommand({}));
    expect(requests).toEqual([
      expect.objectContaining({ RoleArn: 'arn:aws:iam::111122223333:role/fed', Policy: sessionPolicy }),
    ]);
  });

  it('passes each role its own session policy when given one per role ARN', async () => {
    const policyOf = (region: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: ['apigateway:GET'],
            Resource: ['arn:aws:apigateway:*::/restapis'],
            Condition: { StringEquals: { 'aws:RequestedRegion': [region] } },
          },
        ],
      });
    const a = 'arn:aws:iam::111122223333:role/fed';
    const b = 'arn:aws:iam::444455556666:role/fed';
    const requests: { RoleArn?: string; Policy?: string }[] = [];
    const clients = new AwsClientFactory({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: TEST_CREDENTIALS,
      assumeRoleSessionPolicy: { [a]: policyOf('eu-west-1'), [b]: policyOf('us-east-1') },
      assumeRolePlugins: [recording(requests)],
    });
    await clients.apiGateway({ region: 'eu-west-1', roleArn: a }).send(new GetRestApisCommand({}));
    await clients.apiGateway({ region: 'us-east-1', roleArn: b }).send(new GetRestApisCommand({}));
    expect(requests.map((r) => [r.RoleArn, r.Policy])).toEqual([
      [a, policyOf('eu-west-1')],
      [b, policyOf('us-east-1')],
    ]);
  });

  it('leaves the retries of a @connections post to the SDK client: standard mode, four attempts', async () => {
    const client = factory().apiGatewayManagement('https://relay.example/live');
    expect(await client.config.maxAttempts()).toBe(CONNECTIONS_MAX_ATTEMPTS);
    const { retryMode } = client.config;
    expect(typeof retryMode === 'string' ? retryMode : await retryMode()).toBe('standard');
    expect(CONNECTIONS_MAX_ATTEMPTS).toBe(4);
  });

  it('gives the ledger client the agent region and the endpoint override', async () => {
    await factory().dynamoDocument().send(new ListTablesCommand({}));
    expect(emu.proxy.calls.byAccountRegion({ operation: 'ListTables' })).toEqual({
      [`${emu.accountId}/${emu.region}`]: 1,
    });
  });
});
