/**
 * The federated catalog as the control plane sees it. One FederatedApi per deployed REST API stage.
 */

/** Where a federated API lives in AWS. */
export interface ApiSource {
  /** Name of the configured source that discovered it. */
  readonly name: string;
  readonly accountId: string;
  readonly region: string;
  readonly restApiId: string;
  readonly stageName: string;
  readonly deploymentId: string;
}

export interface Throttle {
  readonly rateLimit?: number;
  readonly burstLimit?: number;
}

export interface Quota {
  readonly limit?: number;
  readonly offset?: number;
  readonly period?: 'DAY' | 'WEEK' | 'MONTH';
}

/** One usage plan attached to the stage: subscribing to it creates an API key on that usage plan. */
export interface FederatedPlan {
  /** Deterministic id from the API id and the usage plan id. */
  readonly id: string;
  readonly usagePlanId: string;
  readonly name: string;
  readonly description?: string;
  readonly security: 'API_KEY';
  readonly throttle?: Throttle;
  readonly quota?: Quota;
}

/** Reference to an exported OpenAPI/Swagger document, stored once by its sha256. */
export interface DefinitionRef {
  /** Detected from the document itself: real API Gateway exports OpenAPI 3.0, emulators may answer Swagger 2.0. */
  readonly format: 'openapi-3.0' | 'swagger-2.0' | 'unknown';
  /** Hex sha256 of the exported bytes. */
  readonly sha256: string;
  readonly size: number;
}

/** A definition with its parsed document, as sent to the control plane. */
export interface Definition extends DefinitionRef {
  readonly document: unknown;
}

/**
 * Why a federated API has no definition: API Gateway refused its export with a client error (4xx, e.g.
 * `BadRequestException` for an API it cannot export). Tried again only when the deployment changes.
 */
export interface DefinitionUnavailable {
  readonly code: 'EXPORT_REFUSED';
  readonly message: string;
  /** The deployment whose export was refused. */
  readonly deploymentId: string;
}

export interface FederatedApi {
  /** Deterministic id from accountId, region, restApiId and stageName. */
  readonly id: string;
  readonly name: string;
  /** The stage name. */
  readonly version: string;
  readonly description?: string;
  readonly source: ApiSource;
  /** Stage invoke URL. */
  readonly endpoint: string;
  /** From REST API tags: `key=value`. */
  readonly labels: readonly string[];
  readonly plans: readonly FederatedPlan[];
  readonly definition?: DefinitionRef;
  /** Set instead of `definition` when API Gateway refuses to export this deployment. */
  readonly definitionUnavailable?: DefinitionUnavailable;
  /** Changes when anything the control plane sees changes (deployment, stage, plans, tags, name). */
  readonly fingerprint: string;
  readonly updatedAt: string;
}

export const SubscriptionStatus = {
  PENDING: 'PENDING',
  ACTIVE: 'ACTIVE',
  REVOKED: 'REVOKED',
  FAILED: 'FAILED',
} as const;
export type SubscriptionStatus = (typeof SubscriptionStatus)[keyof typeof SubscriptionStatus];

export const EventType = {
  HELLO: 'hello',
  API_UPSERTED: 'api.upserted',
  API_REMOVED: 'api.removed',
  PLAN_REMOVED: 'plan.removed',
  DISCOVERY_COMPLETED: 'discovery.completed',
  SUBSCRIPTION_REVOKED: 'subscription.revoked',
  SYNC_COMPLETED: 'sync.completed',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];
