/**
 * Change events: API Gateway management calls recorded by CloudTrail and delivered by EventBridge
 * (`source: aws.apigateway`, `detail-type: AWS API Call via CloudTrail`), turned into the targets of a
 * targeted discovery run. Pure: no AWS call. See docs/change-events.md.
 */

export const CHANGE_EVENT_SOURCE = 'aws.apigateway';
export const CHANGE_EVENT_DETAIL_TYPE = 'AWS API Call via CloudTrail';
export const CHANGE_EVENT_EVENT_SOURCE = 'apigateway.amazonaws.com';

/**
 * The API Gateway (REST API, v1) write operations that change what is federated, by what they touch.
 * Names as in the API Gateway reference (CloudTrail's `eventName`). Everything else (resources,
 * methods, integrations, authorizers, models, keys, domain names, ...) reaches a consumer only
 * through a new deployment, which `CreateDeployment` covers.
 */
export const REST_API_EVENT_NAMES = [
  // REST APIs: name, description, created or gone.
  'CreateRestApi',
  'ImportRestApi',
  'PutRestApi',
  'UpdateRestApi',
  'DeleteRestApi',
  // Deployments: what a stage serves (its export).
  'CreateDeployment',
  'UpdateDeployment',
  'DeleteDeployment',
  // Stages: created, redeployed (deploymentId), changed or gone.
  'CreateStage',
  'UpdateStage',
  'DeleteStage',
  // Tags of a REST API: its labels.
  'TagResource',
  'UntagResource',
] as const;

/** Usage plans and their API stages: the plans of federated APIs. */
export const USAGE_PLAN_EVENT_NAMES = ['CreateUsagePlan', 'UpdateUsagePlan', 'DeleteUsagePlan'] as const;

/** Every `eventName` the EventBridge rules match (the rule pattern and the local tap use this list). */
export const CHANGE_EVENT_NAMES: readonly string[] = [...REST_API_EVENT_NAMES, ...USAGE_PLAN_EVENT_NAMES];

/** The EventBridge pattern of the change-event rules (agent account and forwarding rules alike). */
export function changeEventPattern(): {
  source: string[];
  'detail-type': string[];
  detail: { eventSource: string[]; eventName: string[] };
} {
  return {
    source: [CHANGE_EVENT_SOURCE],
    'detail-type': [CHANGE_EVENT_DETAIL_TYPE],
    detail: { eventSource: [CHANGE_EVENT_EVENT_SOURCE], eventName: [...CHANGE_EVENT_NAMES] },
  };
}

/** One change, read from one event. */
export interface ApiGatewayChange {
  readonly accountId: string;
  readonly region: string;
  readonly eventName: string;
  /** REST APIs the call changed (or, for a usage plan, the APIs it names in `apiStages`). */
  readonly restApiIds: readonly string[];
  /** The call changed a usage plan: the plans are re-read and APIs whose attachments changed too. */
  readonly usagePlans: boolean;
  /** CloudTrail's `eventTime` (ISO), when present. */
  readonly eventTime?: string;
}

/** The targets of one account-region, after coalescing. */
export interface ChangeTarget {
  readonly accountId: string;
  readonly region: string;
  readonly restApiIds: readonly string[];
  readonly usagePlans: boolean;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

const REST_API_ID = /^[A-Za-z0-9]{1,64}$/;
const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** `arn:aws:apigateway:<region>::/restapis/<id>[/stages/<name>]` → `<id>`. */
function restApiIdOfArn(arn: string | undefined): string | undefined {
  const id = arn ? /::\/restapis\/([^/]+)/.exec(arn)?.[1] : undefined;
  return id && REST_API_ID.test(id) ? id : undefined;
}

/** `apiStages` values of a usage plan call: `createUsagePlanInput.apiStages` or patch operations `/apiStages`. */
function usagePlanApiIds(request: Json | undefined): string[] {
  if (!request) return [];
  const ids: string[] = [];
  const input = isObject(request.createUsagePlanInput) ? request.createUsagePlanInput : undefined;
  for (const stage of Array.isArray(input?.apiStages) ? input.apiStages : []) {
    const id = isObject(stage) ? str(stage.apiId) : undefined;
    if (id) ids.push(id);
  }
  const patch = isObject(request.updateUsagePlanInput) ? request.updateUsagePlanInput : request;
  for (const op of Array.isArray(patch.patchOperations) ? patch.patchOperations : []) {
    if (!isObject(op) || op.path !== '/apiStages') continue;
    // `value` is `<restApiId>:<stageName>`.
    const id = str(op.value)?.split(':')[0];
    if (id) ids.push(id);
  }
  return ids.filter((id) => REST_API_ID.test(id));
}

/**
 * Reads one EventBridge event. Returns `undefined` for anything that is not a successful API Gateway
 * call from the list (another source, a failed call with `errorCode`, an unknown operation, a tag
 * call on something other than a REST API), so a stray event costs nothing.
 */
export function parseChangeEvent(event: unknown): ApiGatewayChange | undefined {
  if (!isObject(event) || !isObject(event.detail)) return undefined;
  const detail = event.detail;
  if (event.source !== CHANGE_EVENT_SOURCE || detail.eventSource !== CHANGE_EVENT_EVENT_SOURCE)
    return undefined;
  if (detail.errorCode !== undefined) return undefined; // the call failed: nothing changed
  const eventName = str(detail.eventName);
  if (!eventName || !CHANGE_EVENT_NAMES.includes(eventName)) return undefined;
  const accountId = str(detail.recipientAccountId) ?? str(event.account);
  const region = str(detail.awsRegion) ?? str(event.region);
  if (!accountId || !ACCOUNT_ID.test(accountId) || !region || !REGION.test(region)) return undefined;
  const request = isObject(detail.requestParameters) ? detail.requestParameters : undefined;
  const response = isObject(detail.responseElements) ? detail.responseElements : undefined;
  const eventTime = str(detail.eventTime) ?? str(event.time);
  const base = { accountId, region, eventName, ...(eventTime ? { eventTime } : {}) };

  if ((USAGE_PLAN_EVENT_NAMES as readonly string[]).includes(eventName)) {
    return { ...base, restApiIds: [...new Set(usagePlanApiIds(request))], usagePlans: true };
  }
  let restApiId: string | undefined;
  if (eventName === 'TagResource' || eventName === 'UntagResource') {
    restApiId = restApiIdOfArn(str(request?.resourceArn));
  } else {
    // A new REST API has its id only in the answer.
    restApiId = str(request?.restApiId) ?? str(response?.id) ?? str(response?.restApiId);
  }
  if (!restApiId || !REST_API_ID.test(restApiId)) return undefined;
  return { ...base, restApiIds: [restApiId], usagePlans: false };
}

/**
 * Coalesces a batch of changes into one target per account-region: ten calls on one API are one
 * REST API to re-read, and any number of usage-plan calls one re-read of the plans.
 */
export function coalesceChanges(changes: readonly ApiGatewayChange[]): ChangeTarget[] {
  const byUnit = new Map<string, { accountId: string; region: string; ids: Set<string>; plans: boolean }>();
  for (const change of changes) {
    const key = `${change.accountId}/${change.region}`;
    let unit = byUnit.get(key);
    if (!unit) {
      unit = { accountId: change.accountId, region: change.region, ids: new Set(), plans: false };
      byUnit.set(key, unit);
    }
    for (const id of change.restApiIds) unit.ids.add(id);
    unit.plans ||= change.usagePlans;
  }
  return [...byUnit.values()].map((u) => ({
    accountId: u.accountId,
    region: u.region,
    restApiIds: [...u.ids].sort(),
    usagePlans: u.plans,
  }));
}
