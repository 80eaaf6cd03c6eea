import {
  CreateApiKeyCommand,
  GetApiKeysCommand,
  GetExportCommand,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
} from '@aws-sdk/client-api-gateway';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { evaluatePolicy, iamMatch, type PolicyDocument } from '../../emulator/iam.js';
import { apiGatewayOperation } from '../../emulator/operations.js';
import { demoSeed, type SeedResult, seed } from '../../emulator/seeder.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

describe('operation naming', () => {
  const op = (method: string, path: string, query = '') =>
    apiGatewayOperation(method, path, new URLSearchParams(query)).operation;
  it('names API Gateway calls by method and path', () => {
    expect(op('GET', '/restapis')).toBe('GetRestApis');
    expect(op('GET', '/restapis/abc123/stages')).toBe('GetStages');
    expect(op('GET', '/restapis/abc123/stages/prod/exports/oas30')).toBe('GetExport');
    expect(op('GET', '/usageplans')).toBe('GetUsagePlans');
    expect(op('POST', '/apikeys')).toBe('CreateApiKey');
    expect(op('POST', '/apikeys', 'mode=import')).toBe('ImportApiKeys');
    expect(op('POST', '/usageplans/up1/keys')).toBe('CreateUsagePlanKey');
    expect(op('DELETE', '/apikeys/k1')).toBe('DeleteApiKey');
    expect(op('GET', '/apikeys')).toBe('GetApiKeys');
    expect(op('GET', '/usageplans/up1/keys')).toBe('GetUsagePlanKeys');
    expect(op('PATCH', '/restapis/abc/stages/prod')).toBe('UpdateStage');
    expect(op('GET', '/clientcertificates/c1')).toBe('apigateway:GET /clientcertificates/{id}');
  });
});

describe('IAM wildcard matching', () => {
  it('* spans slashes, ? is one character, actions are case-insensitive', () => {
    expect(
      iamMatch('arn:aws:apigateway:*::/restapis/*', 'arn:aws:apigateway:us-east-1::/restapis/a/stages/b'),
    ).toBe(true);
    expect(
      iamMatch('arn:aws:apigateway:us-east-1::/restapis', 'arn:aws:apigateway:us-east-1::/restapis/a'),
    ).toBe(false);
    expect(iamMatch('/apikeys/?', '/apikeys/a')).toBe(true);
    expect(iamMatch('/apikeys/?', '/apikeys/ab')).toBe(false);
    expect(iamMatch('apigateway:get', 'apigateway:GET', true)).toBe(true);
    expect(iamMatch('a.b', 'aXb')).toBe(false);
  });
  it('explicit Deny wins, Action/Resource may be strings or arrays', () => {
    const policy: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['apigateway:GET', 'apigateway:POST'], Resource: '*' },
        { Effect: 'Deny', Action: 'apigateway:POST', Resource: ['arn:aws:apigateway:*::/apikeys'] },
      ],
    };
    expect(evaluatePolicy(policy, 'apigateway:GET', 'arn:aws:apigateway:us-east-1::/apikeys')).toBe('allow');
    expect(evaluatePolicy(policy, 'apigateway:POST', 'arn:aws:apigateway:us-east-1::/apikeys')).toBe('deny');
    expect(evaluatePolicy(policy, 'apigateway:DELETE', 'arn:aws:apigateway:us-east-1::/apikeys/x')).toBe(
      'deny',
    );
  });
});

describe('fidelity proxy against moto', () => {
  let emu: Emulator;
  let seeded: SeedResult;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    seeded = await seed(emu.apiGateway(), demoSeed());
  });

  it('counts calls by operation and by account-region, across services', async () => {
    const apigw = emu.apiGateway({ via: 'proxy' });
    const apigwEu = emu.apiGateway({ via: 'proxy', region: 'eu-west-1' });
    await apigw.send(new GetRestApisCommand({ limit: 500 }));
    await apigw.send(new GetStagesCommand({ restApiId: seeded.apis.petstore!.restApiId }));
    await apigw.send(new GetStagesCommand({ restApiId: seeded.apis.orders!.restApiId }));
    await apigw.send(new GetUsagePlansCommand({ limit: 500 }));
    await apigw.send(
      new GetExportCommand({
        restApiId: seeded.apis.petstore!.restApiId,
        stageName: 'prod',
        exportType: 'oas30',
      }),
    );
    await apigwEu.send(new GetRestApisCommand({}));
    await emu.dynamoDb({ via: 'proxy' }).send(new ListTablesCommand({}));
    const sts = new STSClient(emu.clientConfig());
    await sts.send(new GetCallerIdentityCommand({}));

    const calls = emu.proxy.calls;
    expect(calls.byOperation({ service: 'apigateway' })).toEqual({
      GetRestApis: 2,
      GetStages: 2,
      GetUsagePlans: 1,
      GetExport: 1,
    });
    expect(calls.countOf('ListTables', { service: 'dynamodb' })).toBe(1);
    expect(calls.countOf('GetCallerIdentity', { service: 'sts' })).toBe(1);
    expect(calls.byAccountRegion({ service: 'apigateway' })).toEqual({
      '123456789012/us-east-1': 5,
      '123456789012/eu-west-1': 1,
    });
    expect(calls.count()).toBe(8);
    emu.proxy.resetCalls();
    expect(calls.count()).toBe(0);
  });

  it('refuses the export of chosen REST APIs with 400 BadRequestException, as API Gateway does for some', async () => {
    const apigw = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    const refused = seeded.apis.petstore!.restApiId;
    emu.proxy.refuseExports([refused]);
    const exportOf = (restApiId: string) =>
      apigw.send(new GetExportCommand({ restApiId, stageName: 'prod', exportType: 'oas30' }));
    await expect(exportOf(refused)).rejects.toMatchObject({
      name: 'BadRequestException',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(exportOf(seeded.apis.orders!.restApiId)).resolves.toMatchObject({
      $metadata: { httpStatusCode: 200 },
    });
    emu.proxy.refuseExports(undefined);
    await expect(exportOf(refused)).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
  });

  it("attributes calls with assumed-role credentials to the role's account", async () => {
    const sts = new STSClient(emu.clientConfig());
    const assumed = await sts.send(
      new AssumeRoleCommand({
        RoleArn: 'arn:aws:iam::111122223333:role/federation-discovery',
        RoleSessionName: 't',
      }),
    );
    const credentials = {
      accessKeyId: assumed.Credentials!.AccessKeyId!,
      secretAccessKey: assumed.Credentials!.SecretAccessKey!,
      sessionToken: assumed.Credentials!.SessionToken!,
    };
    const member = emu.apiGateway({ via: 'proxy', credentials, region: 'eu-central-1' });
    const listing = await member.send(new GetRestApisCommand({}));
    // moto keeps a separate backend per account: the member account has no APIs
    expect(listing.items ?? []).toHaveLength(0);
    expect(emu.proxy.accountOf(credentials.accessKeyId)).toBe('111122223333');
    expect(emu.proxy.calls.byAccountRegion({ operation: 'GetRestApis' })).toEqual({
      '111122223333/eu-central-1': 1,
    });
  });

  it('IAM refusal: only what the policy allows reaches moto', async () => {
    emu.proxy.setPolicy({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'apigateway:GET', Resource: 'arn:aws:apigateway:us-east-1::/restapis' },
      ],
    });
    const apigw = emu.apiGateway({ via: 'proxy' });
    const listed = await apigw.send(new GetRestApisCommand({ limit: 500 }));
    expect(listed.items).toHaveLength(5);

    const refusedCreate = apigw.send(new CreateApiKeyCommand({ name: 'sneaky', enabled: true }));
    await expect(refusedCreate).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 403 },
    });
    await refusedCreate.catch((error: Error) => {
      expect(error.message).toContain('is not authorized to perform: apigateway:POST on resource: ');
      expect(error.message).toContain('arn:aws:apigateway:us-east-1::/apikeys');
    });
    await expect(apigw.send(new GetApiKeysCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(
      apigw.send(new GetStagesCommand({ restApiId: seeded.apis.petstore!.restApiId })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    // non-API Gateway calls pass through
    await emu.dynamoDb({ via: 'proxy' }).send(new ListTablesCommand({}));

    expect(emu.proxy.stats.refused).toBe(3);
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(3);
    // the refused CreateApiKey never reached moto
    const keys = await emu.apiGateway().send(new GetApiKeysCommand({}));
    expect(keys.items ?? []).toHaveLength(0);

    // wildcards: * spans path segments
    emu.proxy.setPolicy({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['apigateway:GET'], Resource: ['arn:aws:apigateway:*::/restapis/*'] },
        { Effect: 'Allow', Action: 'apigateway:POST', Resource: 'arn:aws:apigateway:*::/apikeys' },
      ],
    });
    await apigw.send(new GetStagesCommand({ restApiId: seeded.apis.petstore!.restApiId }));
    await apigw.send(new CreateApiKeyCommand({ name: 'allowed', enabled: true }));
    await expect(apigw.send(new GetRestApisCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });

    emu.proxy.setPolicy(undefined);
    await apigw.send(new GetApiKeysCommand({}));
  });

  it('a per-access-key policy applies to that key only', async () => {
    emu.proxy.setPolicy(
      { Statement: { Effect: 'Allow', Action: 'apigateway:GET', Resource: '*' } },
      { accessKeyId: 'discovery' },
    );
    const discovery = emu.apiGateway({
      via: 'proxy',
      credentials: { accessKeyId: 'discovery', secretAccessKey: 'x' },
    });
    await discovery.send(new GetApiKeysCommand({}));
    await expect(discovery.send(new CreateApiKeyCommand({ name: 'k' }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await emu.apiGateway({ via: 'proxy' }).send(new CreateApiKeyCommand({ name: 'k' }));
  });
});
