import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  detectDefinitionFormat,
  diffCatalog,
  type FederatedApi,
  type FederatedPlan,
  federatedApiId,
  federatedPlanId,
  fingerprint,
  labelsFromTags,
  passesLabelFilter,
  sha256Hex,
  stageEndpoint,
} from '../../layers/federation-core/src/index.js';

describe('ids', () => {
  it('derives the API id from sha256 of account:region:restApiId:stage, 32 hex characters', () => {
    const id = federatedApiId('111122223333', 'eu-west-1', 'abc123', 'prod');
    expect(id).toBe(sha256Hex('111122223333:eu-west-1:abc123:prod').slice(0, 32));
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(federatedApiId('111122223333', 'eu-west-1', 'abc123', 'dev')).not.toBe(id);
    expect(federatedPlanId(id, 'up1')).toBe(sha256Hex(`${id}:up1`).slice(0, 32));
  });
});

describe('labels', () => {
  it('turns tags into sorted key=value labels', () => {
    expect(labelsFromTags({ team: 'a', env: 'prod' })).toEqual(['env=prod', 'team=a']);
    expect(labelsFromTags(undefined)).toEqual([]);
  });

  it('includes by key or key=value, and exclude wins', () => {
    const labels = ['team=payments', 'visibility=public'];
    expect(passesLabelFilter(labels, { include: [], exclude: [] })).toBe(true);
    expect(passesLabelFilter(labels, { include: ['team'], exclude: [] })).toBe(true);
    expect(passesLabelFilter(labels, { include: ['team=catalog'], exclude: [] })).toBe(false);
    expect(passesLabelFilter(labels, { include: ['visibility=public'], exclude: ['team=payments'] })).toBe(
      false,
    );
    expect(passesLabelFilter(labels, { include: [], exclude: ['visibility'] })).toBe(false);
    // a key is not a prefix match on other keys
    expect(passesLabelFilter(['teams=x'], { include: ['team'], exclude: [] })).toBe(false);
  });
});

describe('stageEndpoint and detectDefinitionFormat', () => {
  it('builds the stage invoke URL', () => {
    expect(stageEndpoint('abc', 'us-east-1', 'prod')).toBe(
      'https://abc.execute-api.us-east-1.amazonaws.com/prod',
    );
    expect(stageEndpoint('abc', 'cn-north-1', 'v1')).toBe(
      'https://abc.execute-api.cn-north-1.amazonaws.com.cn/v1',
    );
  });

  it('reads the format from the document, never assuming it', () => {
    expect(detectDefinitionFormat({ openapi: '3.0.1' })).toBe('openapi-3.0');
    expect(detectDefinitionFormat({ swagger: '2.0' })).toBe('swagger-2.0');
    expect(detectDefinitionFormat({ info: {} })).toBe('unknown');
    expect(detectDefinitionFormat('x')).toBe('unknown');
  });
});

const plan = (id: string, extra: Partial<FederatedPlan> = {}): FederatedPlan => ({
  id,
  usagePlanId: `up-${id}`,
  name: id,
  security: 'API_KEY',
  ...extra,
});

const base = {
  name: 'A',
  stageName: 'prod',
  deploymentId: 'd1',
  endpoint: 'https://x',
  labels: ['a=1', 'b=2'],
  plans: [plan('p1'), plan('p2')],
  definitionSha256: 'f'.repeat(64),
};

describe('fingerprint', () => {
  it('ignores the order of labels and plans', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), (swapLabels, swapPlans) => {
        const input = {
          ...base,
          labels: swapLabels ? [...base.labels].reverse() : base.labels,
          plans: swapPlans ? [...base.plans].reverse() : base.plans,
        };
        return fingerprint(input) === fingerprint(base);
      }),
    );
  });

  it('changes with every field the control plane sees', () => {
    const fp = fingerprint(base);
    for (const change of [
      { name: 'B' },
      { description: 'new' },
      { deploymentId: 'd2' },
      { stageUpdatedAt: '2025-01-01T00:00:00Z' },
      { labels: ['a=1'] },
      { plans: [plan('p1')] },
      { plans: [plan('p1', { throttle: { rateLimit: 1 } }), plan('p2')] },
      { plans: [plan('p1', { quota: { limit: 5, period: 'DAY' as const } }), plan('p2')] },
      { definitionSha256: 'e'.repeat(64) },
    ]) {
      expect(fingerprint({ ...base, ...change })).not.toBe(fp);
    }
  });
});

describe('diffCatalog', () => {
  const api = (id: string, fp: string, plans: FederatedPlan[] = [plan(`${id}-p`)]): FederatedApi => ({
    id,
    name: id,
    version: 'prod',
    source: { name: 's', accountId: '1', region: 'r', restApiId: id, stageName: 'prod', deploymentId: 'd' },
    endpoint: 'e',
    labels: [],
    plans,
    fingerprint: fp,
    updatedAt: 't',
  });

  it('sorts APIs into upserted, unchanged and removed, with the plans of removed APIs', () => {
    const diff = diffCatalog(
      [api('a', '1'), api('b', '1'), api('c', '1')],
      [api('a', '1'), api('b', '2'), api('d', '1')],
      {
        complete: true,
        unread: new Set(),
      },
    );
    expect(diff.unchanged.map((a) => a.id)).toEqual(['a']);
    expect(diff.upserted.map((a) => a.id)).toEqual(['b', 'd']);
    expect(diff.removed.map((a) => a.id)).toEqual(['c']);
    expect(diff.removedPlans.map(({ api, plan }) => [api.id, plan.id])).toEqual([['c', 'c-p']]);
  });

  it('removes nothing and defers plan removals when the read was partial', () => {
    const diff = diffCatalog(
      [api('a', '1', [plan('x'), plan('y')]), api('c', '1')],
      [api('a', '2', [plan('x')])],
      {
        complete: false,
        unread: new Set(),
      },
    );
    expect(diff.removed).toEqual([]);
    expect(diff.removedPlans).toEqual([]);
    expect(diff.upserted).toEqual([]);
    expect(diff.deferred.map((a) => a.id)).toEqual(['a']);
  });

  it('reports a plan gone from an API that stays', () => {
    const diff = diffCatalog([api('a', '1', [plan('x'), plan('y')])], [api('a', '2', [plan('x')])], {
      complete: true,
      unread: new Set(),
    });
    expect(diff.upserted.map((a) => a.id)).toEqual(['a']);
    expect(diff.removedPlans.map(({ plan }) => plan.id)).toEqual(['y']);
  });
});
