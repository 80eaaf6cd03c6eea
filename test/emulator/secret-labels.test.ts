import {
  CreateSecretCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../support/emulator.js';

describe('fidelity proxy: PutSecretValue and staging labels (as Secrets Manager)', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });

  async function scenario(via: 'proxy' | 'moto'): Promise<string[]> {
    const client = new SecretsManagerClient(emu.clientConfig({ via }));
    const name = `labels-${via}`;
    const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: 'x'.repeat(40) }));
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: name,
        VersionStage: 'keep-1',
        MoveToVersionId: created.VersionId,
      }),
    );
    await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'y'.repeat(40) }));
    const out = await client.send(
      new ListSecretVersionIdsCommand({ SecretId: name, IncludeDeprecated: true }),
    );
    return (out.Versions ?? []).find((v) => v.VersionId === created.VersionId)?.VersionStages?.sort() ?? [];
  }

  it('moves AWSCURRENT and AWSPREVIOUS and leaves the previous version’s other labels in place', async () => {
    expect(await scenario('proxy')).toEqual(['AWSPREVIOUS', 'keep-1']);
  });

  it('is a behaviour moto lacks (the check can fail)', async () => {
    expect(await scenario('moto')).toEqual(['AWSPREVIOUS']);
  });
});
