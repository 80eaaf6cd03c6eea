/**
 * `GetExport` as API Gateway answers it. moto exports the API's current resources as Swagger 2.0 whatever
 * the export type, for any stage name, with the current time as `info.version` (so two exports of the same
 * deployment differ). The proxy answers 404 `NotFoundException` for an unknown stage, an OpenAPI 3.0.1
 * document for `oas30`, the API's models as schemas, lower-case methods, and a version stable per
 * deployment (its creation time): what definition fetching and change detection rely on.
 *
 * Only moto's answer is rewritten: an upstream that already answers `oas30` with an OpenAPI 3 document (a
 * user's emulator that does it itself) gets it passed through unchanged, with no lookups. The lookups the
 * rewrite needs (stage, deployment, models) answer the client with the upstream's own response when they
 * fail for any reason but a missing stage (a 429 stays a 429, with its `Retry-After`).
 *
 * API Gateway refuses to export some APIs for good (a model with a non-JSON media type, for example)
 * with 400 `BadRequestException`, whatever the deployment; the proxy does so for the REST APIs given to
 * `refuseExports`.
 */
import { randomUUID } from 'node:crypto';
import { type Exchange, lookup, send, sendError } from './http.js';

interface SwaggerDocument {
  swagger?: string;
  info?: { title?: string; version?: string; description?: string };
  host?: string;
  basePath?: string;
  paths?: Record<
    string,
    Record<string, { responses?: Record<string, { description?: string; schema?: unknown }> }>
  >;
  definitions?: Record<string, unknown>;
}

/** Rewrites `#/definitions/X` references to `#/components/schemas/X`. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string'
          ? v.replace('#/definitions/', '#/components/schemas/')
          : rewriteRefs(v),
      ]),
    );
  }
  return value;
}

/**
 * Converts moto's Swagger 2.0 export into the OpenAPI 3.0.1 shape API Gateway's `oas30` export has
 * (`servers` with a `basePath` variable defaulting to the stage, responses with JSON content, schemas).
 */
export function swaggerToOas30(
  swagger: SwaggerDocument,
  options: { stageName: string; version: string; schemas?: Record<string, unknown> },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, operations] of Object.entries(swagger.paths ?? {})) {
    const converted: Record<string, unknown> = {};
    for (const [method, operation] of Object.entries(operations)) {
      const responses: Record<string, unknown> = {};
      for (const [code, response] of Object.entries(operation.responses ?? {})) {
        responses[code] = {
          description: response.description ?? `${code} response`,
          ...(response.schema
            ? { content: { 'application/json': { schema: rewriteRefs(response.schema) } } }
            : {}),
        };
      }
      const parameters = [...path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      converted[method.toLowerCase()] = { ...(parameters.length > 0 ? { parameters } : {}), responses };
    }
    paths[path] = converted;
  }
  return {
    openapi: '3.0.1',
    info: { title: swagger.info?.title ?? '', version: options.version },
    servers: [
      {
        url: `https://${swagger.host ?? 'localhost'}/{basePath}`,
        variables: { basePath: { default: options.stageName } },
      },
    ],
    paths,
    components: { schemas: { ...(rewriteRefs(swagger.definitions ?? {}) as object), ...options.schemas } },
  };
}

/** The deployment's creation time as API Gateway writes it in `info.version` (`2024-01-02T03:04:05Z`). */
async function deploymentVersion(
  ex: Exchange,
  restApiId: string,
  deploymentId: string | undefined,
): Promise<string> {
  if (!deploymentId) return 'undeployed';
  const deployment = await lookup(
    ex,
    `/restapis/${encodeURIComponent(restApiId)}/deployments/${encodeURIComponent(deploymentId)}`,
  );
  const created = deployment
    ? (JSON.parse(deployment.body.toString('utf8')) as { createdDate?: number }).createdDate
    : undefined;
  return typeof created === 'number'
    ? new Date(created * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
    : deploymentId;
}

/** The API's models as JSON schemas by name (a model with a non-JSON schema is left out). */
async function modelSchemas(ex: Exchange, restApiId: string): Promise<Record<string, unknown>> {
  const response = await lookup(ex, `/restapis/${encodeURIComponent(restApiId)}/models`);
  const models = response
    ? ((JSON.parse(response.body.toString('utf8')) as { item?: Array<{ name?: string; schema?: string }> })
        .item ?? [])
    : [];
  const schemas: Record<string, unknown> = {};
  for (const model of models) {
    if (!model.name || !model.schema) continue;
    try {
      schemas[model.name] = JSON.parse(model.schema);
    } catch {
      // not JSON: left out
    }
  }
  return schemas;
}

/**
 * Answers `GET /restapis/{id}/stages/{stage}/exports/{type}` like API Gateway; REST APIs in `refused`
 * get 400 `BadRequestException`.
 */
export async function answerExport(ex: Exchange, refused: ReadonlySet<string> = new Set()): Promise<void> {
  const [, , restApiId = '', , stageName = '', , exportType] = ex.url.pathname
    .split('/')
    .map((p) => decodeURIComponent(p));
  if (refused.has(restApiId)) {
    sendError(
      ex.res,
      ex.identity,
      400,
      'BadRequestException',
      `Unable to export the API ${restApiId}: its models use a media type the ${exportType} export does not support`,
    );
    return;
  }
  const upstream = await ex.forward();
  if (upstream.status !== 200) {
    send(ex.res, upstream.status, upstream.headers, upstream.body);
    return;
  }
  let swagger: SwaggerDocument | undefined;
  try {
    const parsed = JSON.parse(upstream.body.toString('utf8')) as SwaggerDocument & { openapi?: unknown };
    // moto's Swagger 2.0 is rewritten; what is already an OpenAPI 3 document (or not JSON) is passed on
    if (typeof parsed.swagger === 'string' && parsed.openapi === undefined) swagger = parsed;
  } catch {
    // not JSON: not moto's export
  }
  if (!swagger) {
    send(ex.res, upstream.status, upstream.headers, upstream.body);
    return;
  }
  const stage = await lookup(
    ex,
    `/restapis/${encodeURIComponent(restApiId)}/stages/${encodeURIComponent(stageName)}`,
  );
  if (!stage) {
    sendError(ex.res, ex.identity, 404, 'NotFoundException', 'Invalid stage identifier specified');
    return;
  }
  const { deploymentId } = JSON.parse(stage.body.toString('utf8')) as { deploymentId?: string };
  const version = await deploymentVersion(ex, restApiId, deploymentId);
  const schemas = await modelSchemas(ex, restApiId);
  const document =
    exportType === 'oas30'
      ? swaggerToOas30(swagger, { stageName, version, schemas })
      : {
          ...swagger,
          info: { ...swagger.info, version },
          paths: Object.fromEntries(
            Object.entries(swagger.paths ?? {}).map(([path, ops]) => [
              path,
              Object.fromEntries(Object.entries(ops).map(([m, op]) => [m.toLowerCase(), op])),
            ]),
          ),
          basePath: `/${stageName}`,
          definitions: { ...swagger.definitions, ...schemas },
        };
  send(
    ex.res,
    200,
    {
      'content-type': 'application/json',
      'content-disposition': `attachment; filename="${exportType === 'oas30' ? 'oas30' : 'swagger'}_${version}.json"`,
      'x-amzn-requestid': randomUUID(),
    },
    JSON.stringify(document),
  );
}
