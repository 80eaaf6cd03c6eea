/**
 * `PutSecretValue` as Secrets Manager does it. When the new version becomes `AWSCURRENT`, AWS moves
 * `AWSCURRENT` to it and `AWSPREVIOUS` to the version that was current, and leaves every other staging
 * label where it was; moto instead replaces all the labels of the previous version with `AWSPREVIOUS`, so
 * a label that keeps a version from being deprecated would be lost. The proxy reads the current version's
 * own labels first (not recorded) and puts them back on it after moto's answer.
 */
import type { IncomingMessage } from 'node:http';
import { forward, type UpstreamResponse } from './http.js';

const AWS_LABELS = new Set(['AWSCURRENT', 'AWSPREVIOUS', 'AWSPENDING']);

function call(
  target: URL,
  req: IncomingMessage,
  operation: string,
  input: unknown,
): Promise<UpstreamResponse> {
  return forward(target, req, Buffer.from(JSON.stringify(input)), {
    method: 'POST',
    path: '/',
    headers: { 'x-amz-target': `secretsmanager.${operation}` },
  });
}

/** Forwards a `PutSecretValue`, keeping the custom labels of the version it makes previous. */
export async function putSecretValueKeepingLabels(
  target: URL,
  req: IncomingMessage,
  body: Buffer,
): Promise<UpstreamResponse> {
  const input = JSON.parse(body.toString('utf8') || '{}') as { SecretId?: string; VersionStages?: string[] };
  const movesCurrent = !input.VersionStages || input.VersionStages.includes('AWSCURRENT');
  let previous: { id: string; labels: string[] } | undefined;
  if (movesCurrent && input.SecretId) {
    const listed = await call(target, req, 'ListSecretVersionIds', {
      SecretId: input.SecretId,
      IncludeDeprecated: true,
    });
    if (listed.status === 200) {
      const versions =
        (
          JSON.parse(listed.body.toString('utf8')) as {
            Versions?: { VersionId: string; VersionStages?: string[] }[];
          }
        ).Versions ?? [];
      const current = versions.find((v) => v.VersionStages?.includes('AWSCURRENT'));
      const labels = (current?.VersionStages ?? []).filter((label) => !AWS_LABELS.has(label));
      if (current && labels.length > 0) previous = { id: current.VersionId, labels };
    }
  }
  const upstream = await forward(target, req, body);
  if (upstream.status === 200 && previous) {
    for (const label of previous.labels) {
      await call(target, req, 'UpdateSecretVersionStage', {
        SecretId: input.SecretId,
        VersionStage: label,
        MoveToVersionId: previous.id,
      });
    }
  }
  return upstream;
}
