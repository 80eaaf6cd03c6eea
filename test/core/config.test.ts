import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  effectiveSources,
  loadConfig,
  loadConfigFile,
  parseAgentConfig,
} from '@apigw-federation/core';
import { describe, expect, it } from 'vitest';

function writeConfig(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fed-config-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, content);
  return path;
}

describe('agent configuration', () => {
  it('applies the documented defaults to an empty object', () => {
    const config = parseAgentConfig({});
    expect(config).toMatchObject({
      agentId: 'apigw-federation',
      sources: [],
      acceptApiWithoutUsagePlan: false,
      labels: { include: [], exclude: [] },
      schedule: 'rate(15 minutes)',
      rateLimit: { ratePerSecond: 5, burst: 20 },
      apiKeyRateLimit: { ratePerSecond: 2, burst: 4 },
      concurrency: 4,
    });
  });

  it("refuses a key bucket beyond AWS's 5 requests/s for CreateApiKey and DeleteApiKey", () => {
    expect(() => parseAgentConfig({ apiKeyRateLimit: { ratePerSecond: 6 } })).toThrow(
      /apiKeyRateLimit\.ratePerSecond: AWS allows CreateApiKey and DeleteApiKey 5 requests\/s/,
    );
  });

  it('accepts a multi-account, multi-region source matrix', () => {
    const config = parseAgentConfig({
      sources: [
        { name: 'self', regions: ['eu-west-1', 'us-east-1'] },
        {
          name: 'payments',
          accountId: '111122223333',
          roleArn: 'arn:aws:iam::111122223333:role/fed',
          regions: ['eu-central-1'],
        },
      ],
      labels: { include: ['visibility=public'], exclude: ['internal'] },
    });
    expect(config.sources).toHaveLength(2);
    expect(config.labels.include).toEqual(['visibility=public']);
  });

  it('rejects a config file with a wrong type, naming the field and the received value', () => {
    const path = writeConfig(JSON.stringify({ acceptApiWithoutUsagePlan: 'yes' }));
    expect(() => loadConfigFile(path)).toThrow(ConfigError);
    expect(() => loadConfigFile(path)).toThrow(/acceptApiWithoutUsagePlan: .*boolean.*\(received "yes"\)/);
  });

  it('rejects an unknown region shape, naming the path of the bad region', () => {
    const path = writeConfig(JSON.stringify({ sources: [{ name: 'a', regions: ['eu-west-1', 'Europe'] }] }));
    expect(() => loadConfigFile(path)).toThrow(
      /sources\[0\]\.regions\[1\]: expected an AWS region like 'eu-west-1' \(received "Europe"\)/,
    );
  });

  it('rejects unknown keys, so a typo does not silently fall back to a default', () => {
    expect(() => parseAgentConfig({ acceptApiWithoutUsagePlans: true })).toThrow(
      /acceptApiWithoutUsagePlans/,
    );
  });

  it('rejects duplicate source names and a malformed role ARN', () => {
    expect(() =>
      parseAgentConfig({
        sources: [
          { name: 'a', regions: ['eu-west-1'] },
          { name: 'a', regions: ['us-east-1'] },
        ],
      }),
    ).toThrow(/unique source names/);
    expect(() =>
      parseAgentConfig({ sources: [{ name: 'a', roleArn: 'role/fed', regions: ['eu-west-1'] }] }),
    ).toThrow(/sources\[0\]\.roleArn: expected an IAM role ARN/);
  });

  it('rejects a file that is not JSON with the parser message', () => {
    const path = writeConfig('{ sources: ');
    expect(() => loadConfigFile(path)).toThrow(/is not valid JSON/);
  });

  it('loads settings from FED_CONFIG_FILE and lets deployment variables override resource names', () => {
    const path = writeConfig(JSON.stringify({ tableName: 'from-file', concurrency: 2 }));
    const loaded = loadConfig({
      FED_CONFIG_FILE: path,
      FED_TABLE_NAME: 'from-env',
      AWS_REGION: 'eu-west-1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
    });
    expect(loaded.agent.tableName).toBe('from-env');
    expect(loaded.agent.concurrency).toBe(2);
    expect(loaded.runtime).toMatchObject({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000' });
  });

  it('fails without a region, saying what is expected', () => {
    expect(() => loadConfig({})).toThrow(/AWS_REGION is not set/);
  });

  it('defaults the sources to the function’s own account-region', () => {
    expect(effectiveSources(parseAgentConfig({}), 'ap-southeast-2')).toEqual([
      { name: 'default', regions: ['ap-southeast-2'] },
    ]);
  });
});
