import { describe, expect, it } from 'vitest';
import {
  type CatalogEntry,
  ingestBatches,
  labelMetadata,
  planCharacteristics,
  SubscriptionInputError,
  toGraviteeApi,
  toRelaySubscribe,
  toRelayUnsubscribe,
  toSubscriptionResult,
} from '../../gravitee/src/mapping.js';

const PETSTORE: CatalogEntry = {
  id: 'fed-petstore-prod',
  name: 'Petstore',
  version: 'prod',
  description: 'Pets for sale',
  source: {
    name: 'default',
    accountId: '123456789012',
    region: 'eu-west-1',
    restApiId: 'abc123',
    stageName: 'prod',
    deploymentId: 'dep1',
  },
  endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
  labels: ['team=payments', 'visibility=public'],
  plans: [
    {
      id: 'plan-gold',
      usagePlanId: 'up-gold',
      name: 'Gold',
      description: 'For partners',
      security: 'API_KEY',
      throttle: { rateLimit: 500, burstLimit: 1000 },
      quota: { limit: 10_000_000, period: 'MONTH' },
    },
    { id: 'plan-free', usagePlanId: 'up-free', name: 'Free', security: 'API_KEY' },
  ],
  definition: {
    format: 'openapi-3.0',
    document: { openapi: '3.0.1', info: { title: 'Petstore' }, paths: {} },
  },
};

describe('catalog → Gravitee model', () => {
  it('maps a federated API to an Api: stable ids, stage as version, connection details, PROXY, plans, labels', () => {
    expect(toGraviteeApi(PETSTORE)).toEqual({
      uniqueId: 'fed-petstore-prod',
      id: 'fed-petstore-prod',
      name: 'Petstore',
      version: 'prod',
      description: 'Pets for sale',
      connectionDetails: {
        url: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
        accountId: '123456789012',
        region: 'eu-west-1',
        restApiId: 'abc123',
        stage: 'prod',
      },
      type: 'PROXY',
      plans: [
        {
          id: 'plan-gold',
          name: 'Gold',
          description: 'For partners',
          planSecurityType: 'API_KEY',
          characteristics: [
            'Rate limit: 500 requests/s',
            'Burst: 1000 requests',
            'Quota: 10000000 requests per month',
          ],
        },
        { id: 'plan-free', name: 'Free', planSecurityType: 'API_KEY', characteristics: [] },
      ],
      metadata: [
        { name: 'team', value: 'payments', format: 'STRING' },
        { name: 'visibility', value: 'public', format: 'STRING' },
      ],
    });
  });

  it('keeps the field order of Gravitee’s Api (@JsonPropertyOrder)', () => {
    expect(Object.keys(toGraviteeApi(PETSTORE, { pages: true }))).toEqual([
      'uniqueId',
      'id',
      'name',
      'version',
      'description',
      'connectionDetails',
      'type',
      'pages',
      'plans',
      'metadata',
    ]);
  });

  it('carries the OpenAPI document as one SWAGGER page when asked (INGEST), none for DISCOVER', () => {
    expect(toGraviteeApi(PETSTORE).pages).toBeUndefined();
    const pages = toGraviteeApi(PETSTORE, { pages: true }).pages!;
    expect(pages).toHaveLength(1);
    expect(pages[0]!.pageType).toBe('SWAGGER');
    expect(pages[0]!.filename).toBe('Petstore-prod.json');
    expect(JSON.parse(pages[0]!.content)).toEqual(PETSTORE.definition!.document);
    const withoutDocument = { ...PETSTORE, definition: undefined };
    expect(toGraviteeApi(withoutDocument, { pages: true }).pages).toEqual([]);
  });

  it('describes throttle and quota as characteristics, and a label without "=" as true', () => {
    expect(planCharacteristics({ quota: { limit: 5, period: 'DAY' } })).toEqual([
      'Quota: 5 requests per day',
    ]);
    expect(labelMetadata(['beta'])).toEqual([{ name: 'beta', value: 'true', format: 'STRING' }]);
  });
});

describe('INGEST batches', () => {
  const many = Array.from({ length: 10 }, (_, i) => ({ ...PETSTORE, id: `api-${i}`, name: `Api ${i}` }));

  it('puts everything in one batch when it fits, and always returns at least one (empty) batch', () => {
    expect(ingestBatches(many, 1_000_000, 2_000_000)).toHaveLength(1);
    expect(ingestBatches([], 1000, 2000)).toEqual([{ apis: [], bytes: 2 }]);
  });

  it('splits by bytes: every batch within the budget, order kept, nothing lost', () => {
    const one = Buffer.byteLength(JSON.stringify(toGraviteeApi(many[0]!, { pages: true })));
    const batches = ingestBatches(many, one * 3 + 10, 1_000_000);
    expect(batches.length).toBeGreaterThan(3);
    for (const batch of batches) {
      expect(batch.bytes).toBe(Buffer.byteLength(JSON.stringify(batch.apis)));
      expect(batch.bytes).toBeLessThanOrEqual(one * 3 + 10);
    }
    expect(batches.flatMap((b) => b.apis.map((a) => a.id))).toEqual(many.map((a) => a.id));
  });

  it('sends an API too large for any message without its page, and says so', () => {
    const oversized: string[] = [];
    const [batch] = ingestBatches([PETSTORE], 100_000, 600, (api) => oversized.push(api.id));
    expect(oversized).toEqual(['fed-petstore-prod']);
    expect(batch!.apis[0]!.pages).toEqual([]);
  });
});

describe('subscriptions', () => {
  const subscribe = {
    apiId: 'fed-petstore-prod',
    subscription: {
      graviteeSubscriptionId: 'sub-1',
      graviteeApplicationId: 'app-1',
      graviteeApplicationName: 'My app',
      type: 'API_KEY',
      metadata: { planId: 'plan-gold' },
    },
  };

  it('maps SUBSCRIBE to the relay subscribe: subscription id, plan from metadata.planId, application', () => {
    expect(toRelaySubscribe(subscribe)).toEqual({
      action: 'subscribe',
      subscriptionId: 'sub-1',
      apiId: 'fed-petstore-prod',
      planId: 'plan-gold',
      application: { id: 'app-1', name: 'My app' },
    });
  });

  it('uses the application id as its name when Gravitee sends none', () => {
    const { graviteeApplicationName: _, ...rest } = subscribe.subscription;
    expect(toRelaySubscribe({ ...subscribe, subscription: rest }).application).toEqual({
      id: 'app-1',
      name: 'app-1',
    });
  });

  it.each([
    ['apiId', { ...subscribe, apiId: undefined }],
    [
      'graviteeSubscriptionId',
      { ...subscribe, subscription: { ...subscribe.subscription, graviteeSubscriptionId: '' } },
    ],
    ['planId', { ...subscribe, subscription: { ...subscribe.subscription, metadata: {} } }],
    [
      'graviteeApplicationId',
      { ...subscribe, subscription: { ...subscribe.subscription, graviteeApplicationId: undefined } },
    ],
    ['OAUTH', { ...subscribe, subscription: { ...subscribe.subscription, type: 'OAUTH' } }],
  ])('rejects a SUBSCRIBE without a usable %s', (field, payload) => {
    expect(() => toRelaySubscribe(payload as Record<string, unknown>)).toThrow(SubscriptionInputError);
    expect(() => toRelaySubscribe(payload as Record<string, unknown>)).toThrow(field);
  });

  it('maps UNSUBSCRIBE to the relay unsubscribe by the subscription id', () => {
    expect(toRelayUnsubscribe(subscribe)).toEqual({ action: 'unsubscribe', subscriptionId: 'sub-1' });
    expect(() => toRelayUnsubscribe({ apiId: 'x' })).toThrow(SubscriptionInputError);
  });

  it('answers with the key and, in metadata, what unsubscribe needs: key id, usage plan, account, region', () => {
    const result = toSubscriptionResult(
      'sub-1',
      { apiKeyId: 'key-1', apiKey: 'the-key-value', usagePlanId: 'up-gold', planId: 'plan-gold' },
      PETSTORE,
    );
    expect(result).toEqual({
      graviteeSubscriptionId: 'sub-1',
      apiKey: 'the-key-value',
      metadata: {
        apiKeyId: 'key-1',
        usagePlanId: 'up-gold',
        planId: 'plan-gold',
        accountId: '123456789012',
        region: 'eu-west-1',
      },
    });
    for (const value of Object.values(result.metadata)) expect(typeof value).toBe('string');
  });
});
