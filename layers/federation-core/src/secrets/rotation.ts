import { randomBytes } from 'node:crypto';
import {
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { ConfigError, toFederationError } from '../errors.js';

/** Prefix of the staging label that keeps a version of the API-key secret from being deprecated. */
export const KEEP_LABEL_PREFIX = 'fed-keep-';
/** Secrets Manager's limit on staging labels attached across all versions of one secret. */
export const MAX_STAGING_LABELS = 20;

export interface RotationResult {
  /** The version that was current, now labelled `fed-keep-<versionId>` (and `AWSPREVIOUS`). */
  readonly previousVersionId: string;
  /** The new current version. */
  readonly currentVersionId: string;
  /** Staging labels on the secret after the rotation (of the 20 Secrets Manager allows). */
  readonly labels: number;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 64 base62 characters (about 380 bits), like the value the stack generates. */
function newSecretValue(): string {
  return [...randomBytes(64)].map((b) => BASE62[b % 62]).join('');
}

/**
 * Rotates the API-key HMAC secret so that nothing the ledger refers to is lost: subscriptions store the
 * version they were created under and derive their key from it again on a repeat, and Secrets Manager
 * treats a version without a staging label as deprecated (it may delete it once a secret has more than
 * 100 versions). So the current version first gets a label of its own, `fed-keep-<versionId>`, then a
 * new value becomes `AWSCURRENT`. Every version that was ever current keeps a label; the limit is
 * Secrets Manager's 20 labels per secret (`AWSCURRENT`, `AWSPREVIOUS` and up to 18 kept versions),
 * checked before anything is written. The value is never returned or logged.
 */
export async function rotateApiKeySecret(
  client: SecretsManagerClient,
  secretId: string,
  options: { readonly newValue?: string } = {},
): Promise<RotationResult> {
  try {
    const versions: { VersionId?: string; VersionStages?: string[] }[] = [];
    let nextToken: string | undefined;
    do {
      const page = await client.send(
        new ListSecretVersionIdsCommand({
          SecretId: secretId,
          IncludeDeprecated: false,
          NextToken: nextToken,
        }),
      );
      versions.push(...(page.Versions ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    const current = versions.find((v) => v.VersionStages?.includes('AWSCURRENT'));
    if (!current?.VersionId) throw new ConfigError(`Secret ${secretId} has no AWSCURRENT version`);
    const keep = `${KEEP_LABEL_PREFIX}${current.VersionId}`;
    const labels = new Set(versions.flatMap((v) => v.VersionStages ?? []));
    // After the rotation: the labels now, plus the keep label and AWSPREVIOUS if not there yet.
    const after = new Set([...labels, keep, 'AWSPREVIOUS']).size;
    if (after > MAX_STAGING_LABELS) {
      throw new ConfigError(
        `Secret ${secretId} would carry ${after} staging labels after this rotation: Secrets Manager allows ` +
          `${MAX_STAGING_LABELS} (see docs/deploy.md, "Rotating the API-key secret")`,
      );
    }
    if (!current.VersionStages?.includes(keep)) {
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: keep,
          MoveToVersionId: current.VersionId,
        }),
      );
    }
    const put = await client.send(
      new PutSecretValueCommand({ SecretId: secretId, SecretString: options.newValue ?? newSecretValue() }),
    );
    if (!put.VersionId) throw new ConfigError(`PutSecretValue on ${secretId} returned no version id`);
    return { previousVersionId: current.VersionId, currentVersionId: put.VersionId, labels: after };
  } catch (error) {
    throw toFederationError(error, `rotate ${secretId}`);
  }
}
