/**
 * Identifies the AWS service and operation of a raw HTTP request, as the fidelity proxy sees it:
 * API Gateway (REST-JSON) by method and path, JSON-protocol services by `X-Amz-Target`, query-protocol
 * services (STS) by `Action`. Region and access key come from the SigV4 `Authorization` header.
 */

export interface RequestIdentity {
  /** SigV4 service name (`apigateway`, `dynamodb`, `secretsmanager`, `sts`, ...), or `unsigned`. */
  service: string;
  /** Operation name (`GetRestApis`, `PutItem`, `AssumeRole`) or `apigateway:METHOD /path/{template}`. */
  operation: string;
  region: string;
  accessKeyId: string;
  /** For API Gateway: the path template that matched (e.g. `/restapis/{restapi_id}/stages`). */
  pathTemplate?: string;
}

type Route = readonly [method: string, template: string, operation: string];

/** API Gateway (v1) management API routes. The first match wins. */
const APIGATEWAY_ROUTES: readonly Route[] = [
  ['GET', '/restapis', 'GetRestApis'],
  ['POST', '/restapis', 'CreateRestApi'],
  ['GET', '/restapis/{restapi_id}', 'GetRestApi'],
  ['PUT', '/restapis/{restapi_id}', 'PutRestApi'],
  ['PATCH', '/restapis/{restapi_id}', 'UpdateRestApi'],
  ['DELETE', '/restapis/{restapi_id}', 'DeleteRestApi'],
  ['GET', '/restapis/{restapi_id}/resources', 'GetResources'],
  ['GET', '/restapis/{restapi_id}/resources/{resource_id}', 'GetResource'],
  ['POST', '/restapis/{restapi_id}/resources/{parent_id}', 'CreateResource'],
  ['PATCH', '/restapis/{restapi_id}/resources/{resource_id}', 'UpdateResource'],
  ['DELETE', '/restapis/{restapi_id}/resources/{resource_id}', 'DeleteResource'],
  ['GET', '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}', 'GetMethod'],
  ['PUT', '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}', 'PutMethod'],
  ['PATCH', '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}', 'UpdateMethod'],
  ['DELETE', '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}', 'DeleteMethod'],
  [
    'GET',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/responses/{status_code}',
    'GetMethodResponse',
  ],
  [
    'PUT',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/responses/{status_code}',
    'PutMethodResponse',
  ],
  [
    'DELETE',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/responses/{status_code}',
    'DeleteMethodResponse',
  ],
  [
    'GET',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration',
    'GetIntegration',
  ],
  [
    'PUT',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration',
    'PutIntegration',
  ],
  [
    'PATCH',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration',
    'UpdateIntegration',
  ],
  [
    'DELETE',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration',
    'DeleteIntegration',
  ],
  [
    'GET',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration/responses/{status_code}',
    'GetIntegrationResponse',
  ],
  [
    'PUT',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration/responses/{status_code}',
    'PutIntegrationResponse',
  ],
  [
    'DELETE',
    '/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration/responses/{status_code}',
    'DeleteIntegrationResponse',
  ],
  ['GET', '/restapis/{restapi_id}/stages', 'GetStages'],
  ['POST', '/restapis/{restapi_id}/stages', 'CreateStage'],
  ['GET', '/restapis/{restapi_id}/stages/{stage_name}', 'GetStage'],
  ['PATCH', '/restapis/{restapi_id}/stages/{stage_name}', 'UpdateStage'],
  ['DELETE', '/restapis/{restapi_id}/stages/{stage_name}', 'DeleteStage'],
  ['GET', '/restapis/{restapi_id}/stages/{stage_name}/exports/{export_type}', 'GetExport'],
  ['GET', '/restapis/{restapi_id}/deployments', 'GetDeployments'],
  ['POST', '/restapis/{restapi_id}/deployments', 'CreateDeployment'],
  ['GET', '/restapis/{restapi_id}/deployments/{deployment_id}', 'GetDeployment'],
  ['PATCH', '/restapis/{restapi_id}/deployments/{deployment_id}', 'UpdateDeployment'],
  ['DELETE', '/restapis/{restapi_id}/deployments/{deployment_id}', 'DeleteDeployment'],
  ['GET', '/restapis/{restapi_id}/models', 'GetModels'],
  ['POST', '/restapis/{restapi_id}/models', 'CreateModel'],
  ['GET', '/restapis/{restapi_id}/models/{model_name}', 'GetModel'],
  ['PATCH', '/restapis/{restapi_id}/models/{model_name}', 'UpdateModel'],
  ['DELETE', '/restapis/{restapi_id}/models/{model_name}', 'DeleteModel'],
  ['GET', '/restapis/{restapi_id}/authorizers', 'GetAuthorizers'],
  ['POST', '/restapis/{restapi_id}/authorizers', 'CreateAuthorizer'],
  ['GET', '/restapis/{restapi_id}/authorizers/{authorizer_id}', 'GetAuthorizer'],
  ['DELETE', '/restapis/{restapi_id}/authorizers/{authorizer_id}', 'DeleteAuthorizer'],
  ['GET', '/restapis/{restapi_id}/requestvalidators', 'GetRequestValidators'],
  ['POST', '/restapis/{restapi_id}/requestvalidators', 'CreateRequestValidator'],
  ['GET', '/restapis/{restapi_id}/gatewayresponses', 'GetGatewayResponses'],
  ['GET', '/apikeys', 'GetApiKeys'],
  ['POST', '/apikeys', 'CreateApiKey'],
  ['GET', '/apikeys/{api_key}', 'GetApiKey'],
  ['PATCH', '/apikeys/{api_key}', 'UpdateApiKey'],
  ['DELETE', '/apikeys/{api_key}', 'DeleteApiKey'],
  ['GET', '/usageplans', 'GetUsagePlans'],
  ['POST', '/usageplans', 'CreateUsagePlan'],
  ['GET', '/usageplans/{usageplan_id}', 'GetUsagePlan'],
  ['PATCH', '/usageplans/{usageplan_id}', 'UpdateUsagePlan'],
  ['DELETE', '/usageplans/{usageplan_id}', 'DeleteUsagePlan'],
  ['GET', '/usageplans/{usageplan_id}/keys', 'GetUsagePlanKeys'],
  ['POST', '/usageplans/{usageplan_id}/keys', 'CreateUsagePlanKey'],
  ['GET', '/usageplans/{usageplan_id}/keys/{key_id}', 'GetUsagePlanKey'],
  ['DELETE', '/usageplans/{usageplan_id}/keys/{key_id}', 'DeleteUsagePlanKey'],
  ['GET', '/usageplans/{usageplan_id}/usage', 'GetUsage'],
  ['GET', '/tags/{resource_arn}', 'GetTags'],
  ['PUT', '/tags/{resource_arn}', 'TagResource'],
  ['DELETE', '/tags/{resource_arn}', 'UntagResource'],
  ['GET', '/account', 'GetAccount'],
  ['PATCH', '/account', 'UpdateAccount'],
  ['GET', '/domainnames', 'GetDomainNames'],
  ['POST', '/domainnames', 'CreateDomainName'],
  ['GET', '/domainnames/{domain_name}', 'GetDomainName'],
  ['DELETE', '/domainnames/{domain_name}', 'DeleteDomainName'],
  ['GET', '/vpclinks', 'GetVpcLinks'],
  ['POST', '/vpclinks', 'CreateVpcLink'],
];

interface CompiledRoute {
  method: string;
  template: string;
  operation: string;
  regex: RegExp;
}

const COMPILED: CompiledRoute[] = APIGATEWAY_ROUTES.map(([method, template, operation]) => ({
  method,
  template,
  operation,
  regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
}));

/** Generic template for unknown paths: every second segment (the id after a collection name) → `{id}`. */
function genericTemplate(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return `/${parts.map((p, i) => (i % 2 === 1 ? '{id}' : p)).join('/')}`;
}

/**
 * Names an API Gateway call from its method and raw (still percent-encoded) path.
 * `POST /restapis?mode=import` is `ImportRestApi`, `POST /apikeys?mode=import` is `ImportApiKeys`.
 */
export function apiGatewayOperation(
  method: string,
  rawPath: string,
  query: URLSearchParams,
): { operation: string; template: string } {
  const upper = method.toUpperCase();
  const route = COMPILED.find((r) => r.method === upper && r.regex.test(rawPath));
  if (!route) {
    const template = genericTemplate(rawPath);
    return { operation: `apigateway:${upper} ${template}`, template };
  }
  if (route.operation === 'CreateRestApi' && query.get('mode') === 'import') {
    return { operation: 'ImportRestApi', template: route.template };
  }
  if (route.operation === 'CreateApiKey' && query.get('mode') === 'import') {
    return { operation: 'ImportApiKeys', template: route.template };
  }
  return { operation: route.operation, template: route.template };
}

const CREDENTIAL_RE = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/** Parses the SigV4 credential scope of an `Authorization` header (or presigned `X-Amz-Credential`). */
export function parseCredentialScope(
  authorization: string | undefined,
): { accessKeyId: string; region: string; service: string } | undefined {
  if (!authorization) return undefined;
  const m = CREDENTIAL_RE.exec(authorization);
  if (!m) return undefined;
  return { accessKeyId: m[1]!, region: m[2]!, service: m[3]! };
}

/** Identifies a request. `body` is only consulted for query-protocol services (form-encoded `Action`). */
export function identifyRequest(
  method: string,
  url: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): RequestIdentity {
  const parsed = new URL(url, 'http://localhost');
  const rawPath = parsed.pathname;
  const scope = parseCredentialScope(header(headers, 'authorization'));
  const service = scope?.service ?? 'unsigned';
  const region = scope?.region ?? 'unknown';
  const accessKeyId = scope?.accessKeyId ?? '';
  if (service === 'apigateway') {
    const { operation, template } = apiGatewayOperation(method, rawPath, parsed.searchParams);
    return { service, operation, region, accessKeyId, pathTemplate: template };
  }
  const target = header(headers, 'x-amz-target');
  if (target) {
    const operation = target.slice(target.lastIndexOf('.') + 1);
    return { service, operation, region, accessKeyId };
  }
  const queryAction = parsed.searchParams.get('Action');
  if (queryAction) return { service, operation: queryAction, region, accessKeyId };
  const contentType = header(headers, 'content-type') ?? '';
  if (contentType.includes('x-www-form-urlencoded') && body.length > 0) {
    const action = new URLSearchParams(body.toString('utf8')).get('Action');
    if (action) return { service, operation: action, region, accessKeyId };
  }
  return {
    service,
    operation: `${service}:${method.toUpperCase()} ${genericTemplate(rawPath)}`,
    region,
    accessKeyId,
  };
}

export function header(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
