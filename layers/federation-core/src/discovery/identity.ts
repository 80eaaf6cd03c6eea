/**
 * Pure derivations of discovery: ids, labels, the label filter, endpoints, format detection and the
 * fingerprint. Everything here is deterministic: the same API Gateway state gives the same catalog.
 */
import { createHash } from 'node:crypto';
import type { LabelFilter } from '../config/schema.js';
import type { DefinitionRef, FederatedPlan } from '../model.js';

/** Hex sha256 of a string or bytes. */
export function sha256Hex(input: string | Uint8Array): string {
  return createHash('sha256').update(input).digest('hex');
}

/** Length of the ids: 32 hex characters = 128 bits of sha256, collision-free at any catalog size. */
const ID_LENGTH = 32;

/**
 * Id of a federated API: the first 32 hex characters of
 * `sha256("<accountId>:<region>:<restApiId>:<stageName>")`. Re-discovery of the same stage always
 * yields the same id; ids reveal nothing about the account.
 */
export function federatedApiId(
  accountId: string,
  region: string,
  restApiId: string,
  stageName: string,
): string {
  return sha256Hex(`${accountId}:${region}:${restApiId}:${stageName}`).slice(0, ID_LENGTH);
}

/** Id of a plan: the first 32 hex characters of `sha256("<apiId>:<usagePlanId>")`. */
export function federatedPlanId(apiId: string, usagePlanId: string): string {
  return sha256Hex(`${apiId}:${usagePlanId}`).slice(0, ID_LENGTH);
}

/** REST API tags as labels: `key=value`, sorted. */
export function labelsFromTags(tags: Record<string, string> | undefined): string[] {
  return Object.entries(tags ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .sort();
}

/** Whether a label filter entry (`key` or `key=value`) matches one of the labels (`key=value`). */
function matchesEntry(entry: string, labels: readonly string[]): boolean {
  if (entry.includes('=')) return labels.includes(entry);
  return labels.some((label) => label === entry || label.startsWith(`${entry}=`));
}

/**
 * The label filter: an API is federated unless it carries an excluded label, and, when `include` is
 * non-empty, only if it carries at least one included label. Exclude wins. An entry `key` matches the
 * tag whatever its value; `key=value` matches that value only.
 */
export function passesLabelFilter(labels: readonly string[], filter: LabelFilter): boolean {
  if (filter.exclude.some((entry) => matchesEntry(entry, labels))) return false;
  if (filter.include.length === 0) return true;
  return filter.include.some((entry) => matchesEntry(entry, labels));
}

/** Invoke URL of a stage: `https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}` (`.com.cn` in China). */
export function stageEndpoint(restApiId: string, region: string, stageName: string): string {
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://${restApiId}.execute-api.${region}.${domain}/${encodeURIComponent(stageName)}`;
}

/**
 * The format of an exported document, read from the document itself: `openapi: 3.x` or
 * `swagger: 2.0`. Real API Gateway answers an `oas30` export with OpenAPI 3.0, emulators may answer
 * Swagger 2.0, so it is never assumed.
 */
export function detectDefinitionFormat(document: unknown): DefinitionRef['format'] {
  if (typeof document !== 'object' || document === null) return 'unknown';
  const d = document as { openapi?: unknown; swagger?: unknown };
  if (typeof d.openapi === 'string' && /^3\./.test(d.openapi)) return 'openapi-3.0';
  if (typeof d.swagger === 'string' && /^2\.0/.test(d.swagger)) return 'swagger-2.0';
  return 'unknown';
}

/** What the fingerprint covers: everything the control plane sees of a federated API. */
export interface FingerprintInput {
  readonly name: string;
  readonly description?: string;
  readonly stageName: string;
  readonly deploymentId: string;
  /** Stage `lastUpdatedDate`, when API Gateway gives one. */
  readonly stageUpdatedAt?: string;
  readonly endpoint: string;
  readonly labels: readonly string[];
  readonly plans: readonly FederatedPlan[];
  readonly definitionSha256?: string;
}

/**
 * Fingerprint of a federated API: hex sha256 of a canonical JSON array of name, description, stage,
 * deployment id, stage update time, endpoint, sorted labels, plans sorted by id (with throttle and
 * quota) and the definition's sha256. Any change the control plane can see changes it; nothing else does.
 */
export function fingerprint(input: FingerprintInput): string {
  const plans = [...input.plans]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => [
      p.id,
      p.usagePlanId,
      p.name,
      p.description ?? null,
      p.security,
      p.throttle ? [p.throttle.rateLimit ?? null, p.throttle.burstLimit ?? null] : null,
      p.quota ? [p.quota.limit ?? null, p.quota.offset ?? null, p.quota.period ?? null] : null,
    ]);
  const canonical = [
    1, // layout version: bump when the covered fields change
    input.name,
    input.description ?? null,
    input.stageName,
    input.deploymentId,
    input.stageUpdatedAt ?? null,
    input.endpoint,
    [...input.labels].sort(),
    plans,
    input.definitionSha256 ?? null,
  ];
  return sha256Hex(JSON.stringify(canonical));
}
