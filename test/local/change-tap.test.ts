import { describe, expect, it } from 'vitest';
import { coalesceChanges, parseChangeEvent } from '../../layers/federation-core/src/index.js';
import { cloudTrailEvent, cloudTrailEventOf, LocalChangeQueue } from '../../local/change-tap.js';

const base = {
  region: 'eu-west-1',
  accountId: '111122223333',
  requestBody: Buffer.alloc(0),
  responseBody: Buffer.alloc(0),
};
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('the local change-event tap', () => {
  it('records a successful CreateDeployment as CloudTrail does, and it parses to its REST API', () => {
    const event = cloudTrailEventOf({
      ...base,
      method: 'POST',
      url: '/restapis/abc123/deployments',
      requestBody: json({ stageName: 'prod' }),
      status: 201,
      responseBody: json({ id: 'dep1' }),
    });
    expect(event).toMatchObject({
      source: 'aws.apigateway',
      'detail-type': 'AWS API Call via CloudTrail',
      account: '111122223333',
      region: 'eu-west-1',
      detail: {
        eventSource: 'apigateway.amazonaws.com',
        eventName: 'CreateDeployment',
        awsRegion: 'eu-west-1',
        recipientAccountId: '111122223333',
        requestParameters: { restApiId: 'abc123', createDeploymentInput: { stageName: 'prod' } },
        responseElements: { id: 'dep1' },
      },
    });
    expect(parseChangeEvent(event)).toMatchObject({
      accountId: '111122223333',
      region: 'eu-west-1',
      eventName: 'CreateDeployment',
      restApiIds: ['abc123'],
      usagePlans: false,
    });
  });

  it('names a new REST API by its answer, a tag call by its ARN, a usage plan call by its apiStages', () => {
    const imported = cloudTrailEventOf({
      ...base,
      method: 'POST',
      url: '/restapis?mode=import',
      status: 201,
      responseBody: json({ id: 'new1' }),
    });
    expect(parseChangeEvent(imported)).toMatchObject({ eventName: 'ImportRestApi', restApiIds: ['new1'] });
    const tagged = cloudTrailEventOf({
      ...base,
      method: 'PUT',
      url: `/tags/${encodeURIComponent('arn:aws:apigateway:eu-west-1::/restapis/abc123')}`,
      requestBody: json({ tags: { team: 'a' } }),
      status: 204,
    });
    expect(parseChangeEvent(tagged)).toMatchObject({ eventName: 'TagResource', restApiIds: ['abc123'] });
    const plan = cloudTrailEventOf({
      ...base,
      method: 'PATCH',
      url: '/usageplans/up1',
      requestBody: json({ patchOperations: [{ op: 'add', path: '/apiStages', value: 'abc123:prod' }] }),
      status: 200,
    });
    expect(parseChangeEvent(plan)).toMatchObject({
      eventName: 'UpdateUsagePlan',
      restApiIds: ['abc123'],
      usagePlans: true,
    });
  });

  it('records nothing for reads, refused calls and operations outside the list', () => {
    expect(cloudTrailEventOf({ ...base, method: 'GET', url: '/restapis', status: 200 })).toBeUndefined();
    expect(
      cloudTrailEventOf({ ...base, method: 'POST', url: '/restapis/abc123/deployments', status: 429 }),
    ).toBeUndefined();
    expect(cloudTrailEventOf({ ...base, method: 'POST', url: '/apikeys', status: 201 })).toBeUndefined();
  });

  it('coalesces a burst per account-region', () => {
    const ev = (eventName: string, restApiId: string, region = 'eu-west-1') =>
      parseChangeEvent(
        cloudTrailEvent({ accountId: '111122223333', region, eventName, requestParameters: { restApiId } }),
      )!;
    const targets = coalesceChanges([
      ...Array.from({ length: 10 }, () => ev('CreateDeployment', 'abc123')),
      ev('UpdateStage', 'def456'),
      ev('DeleteRestApi', 'abc123', 'us-east-1'),
    ]);
    expect(targets).toEqual([
      { accountId: '111122223333', region: 'eu-west-1', restApiIds: ['abc123', 'def456'], usagePlans: false },
      { accountId: '111122223333', region: 'us-east-1', restApiIds: ['abc123'], usagePlans: false },
    ]);
  });

  it('the local queue batches, redelivers failed messages and dead-letters them after maxReceiveCount', async () => {
    const batches: number[] = [];
    const queue = new LocalChangeQueue({
      batchWindowMs: 20,
      redeliveryMs: 10,
      maxReceiveCount: 2,
      deliver: async (event) => {
        batches.push(event.Records.length);
        const records = event.Records as Array<{ messageId: string; body: string }>;
        return {
          batchItemFailures: records
            .filter((r) => JSON.parse(r.body).fail)
            .map((r) => ({ itemIdentifier: r.messageId })),
        };
      },
    });
    for (let i = 0; i < 5; i++) queue.send({ n: i });
    queue.send({ fail: true });
    await new Promise((r) => setTimeout(r, 200));
    await queue.close();
    expect(batches).toEqual([6, 1]);
    expect(queue.deadLetters.map((b) => JSON.parse(b))).toEqual([{ fail: true }]);
  });
});
