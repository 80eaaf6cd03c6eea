/**
 * Rotating the API-key HMAC secret against the emulator: every version a subscription was created under
 * keeps a staging label (Secrets Manager treats an unlabelled version as deprecated and may delete it),
 * and a repeat of an old subscription still answers with its key.
 */
import {
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/rotate-api-key-secret.js';
import { KEEP_LABEL_PREFIX, rotateApiKeySecret } from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import { allKeys, SECRET_NAME, type World, withEmulatorWorld } from './support.js';

const app = { id: 'app-42', name: 'Mobile app' };

describe('rotating the API-key secret', () => {
  let emu: Emulator;
  let world: World;
  let secrets: SecretsManagerClient;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    secrets = world.factory.secretsManager();
  });

  const request = (subscriptionId: string) => ({
    subscriptionId,
    apiId: world.apis.pets.id,
    planId: world.plans.gold,
    application: app,
  });

  /** Version id → its staging labels; versions without any label are deprecated. */
  async function labels(): Promise<Map<string, string[]>> {
    const out = await secrets.send(
      new ListSecretVersionIdsCommand({ SecretId: SECRET_NAME, IncludeDeprecated: true }),
    );
    return new Map((out.Versions ?? []).map((v) => [v.VersionId!, v.VersionStages ?? []]));
  }

  it('a plain put-secret-value twice leaves the first subscription’s version without a label (deprecated)', async () => {
    await world.service({ secretTtlMs: 0 }).subscribe(request('sub-1'));
    const v1 = (await world.repo.get('sub-1'))!.secretVersionId;
    for (const value of ['a'.repeat(64), 'b'.repeat(64)]) {
      await secrets.send(new PutSecretValueCommand({ SecretId: SECRET_NAME, SecretString: value }));
    }
    expect((await labels()).get(v1) ?? []).toEqual([]);
  });

  it('keeps every version the ledger refers to labelled, and old subscriptions repeat with their key', async () => {
    const service = world.service({ secretTtlMs: 0 });
    const answers = [];
    const rotations = [];
    for (const id of ['sub-1', 'sub-2', 'sub-3']) {
      answers.push(await service.subscribe(request(id)));
      rotations.push(await rotateApiKeySecret(secrets, SECRET_NAME));
    }
    const versions = await Promise.all(
      ['sub-1', 'sub-2', 'sub-3'].map(async (id) => (await world.repo.get(id))!.secretVersionId),
    );
    expect(new Set(versions).size).toBe(3);
    expect(rotations.map((r) => r.previousVersionId)).toEqual(versions);
    const now = await labels();
    for (const version of versions) expect(now.get(version)).toContain(`${KEEP_LABEL_PREFIX}${version}`);
    expect(now.get(rotations[2]!.currentVersionId)).toContain('AWSCURRENT');

    // A fresh container (no cache) answers each repeat with the key derived under its own version.
    const fresh = world.service({ secretTtlMs: 0 });
    for (const [i, id] of ['sub-1', 'sub-2', 'sub-3'].entries()) {
      expect(await fresh.subscribe(request(id))).toEqual(answers[i]);
    }
    const values = new Map((await allKeys(world.raw)).map((k) => [k.id, k.value]));
    for (const answer of answers) expect(values.get(answer.apiKeyId)).toBe(answer.apiKey);
    // A new subscription uses the new current version.
    await fresh.subscribe(request('sub-4'));
    expect((await world.repo.get('sub-4'))!.secretVersionId).toBe(rotations[2]!.currentVersionId);
  });

  it('is what `apigw-fed rotate-api-key-secret` runs', async () => {
    await world.service({ secretTtlMs: 0 }).subscribe(request('sub-1'));
    const v1 = (await world.repo.get('sub-1'))!.secretVersionId;
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    try {
      const args = ['--secret-id', SECRET_NAME, '--endpoint', emu.endpoint, '--region', emu.region];
      expect(await main(args)).toBe(0);
      expect(await main(args)).toBe(0);
    } finally {
      process.env = saved;
    }
    expect((await labels()).get(v1)).toEqual([`${KEEP_LABEL_PREFIX}${v1}`]);
  });

  it('refuses, before any write, a rotation past Secrets Manager’s 20 staging labels', async () => {
    for (let i = 0; i < 18; i++) await rotateApiKeySecret(secrets, SECRET_NAME);
    const before = await labels();
    expect([...before.values()].flat()).toHaveLength(20);
    await expect(rotateApiKeySecret(secrets, SECRET_NAME)).rejects.toThrow(/21 staging labels.*allows 20/);
    expect(await labels()).toEqual(before);
  });
});
