/**
 * Cost model (pure): monthly cost of the serverless agent at its discovery schedule, from measured
 * per-run durations and request units, next to an always-on container agent. Prices are us-east-1
 * on-demand list prices without free tier; each constant names its source.
 */

/** The day the prices below were read/assumed; re-check the pages before quoting the numbers. */
export const PRICES_AS_OF = '2025-06-01';

export interface PriceConstant {
  readonly value: number;
  readonly unit: string;
  readonly source: string;
}

export const PRICES = {
  lambdaArmGbSecond: {
    value: 0.0000133334,
    unit: 'USD per GB-second (Arm, first 7.5 billion GB-s/month)',
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
  lambdaRequest: {
    value: 0.2 / 1_000_000,
    unit: 'USD per request ($0.20 per 1M)',
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
  dynamoWriteRequestUnit: {
    value: 0.625 / 1_000_000,
    unit: 'USD per write request unit, on-demand ($0.625 per 1M)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  },
  dynamoReadRequestUnit: {
    value: 0.125 / 1_000_000,
    unit: 'USD per read request unit, on-demand ($0.125 per 1M)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  },
  webSocketMessage: {
    value: 1.0 / 1_000_000,
    unit: 'USD per WebSocket message, metered in 32 KB increments ($1.00 per 1M, first 1B)',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
  },
  webSocketConnectionMinute: {
    value: 0.25 / 1_000_000,
    unit: 'USD per connection-minute ($0.25 per 1M)',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
  },
  fargateArmVcpuHour: {
    value: 0.03238,
    unit: 'USD per vCPU-hour (Fargate Linux/ARM)',
    source: 'https://aws.amazon.com/fargate/pricing/',
  },
  fargateArmGbHour: {
    value: 0.00356,
    unit: 'USD per GB-hour (Fargate Linux/ARM)',
    source: 'https://aws.amazon.com/fargate/pricing/',
  },
} as const satisfies Record<string, PriceConstant>;

export type Prices = { readonly [K in keyof typeof PRICES]: PriceConstant };

/** Hours in a billing month as AWS's calculator counts them. */
export const HOURS_PER_MONTH = 730;

/** Runs per month of a `rate(N minutes)` schedule. */
export function runsPerMonth(scheduleMinutes: number): number {
  return (HOURS_PER_MONTH * 60) / scheduleMinutes;
}

/** What one scheduled discovery run costs, measured. */
export interface RunUsage {
  /** Billed duration of the invocation, ms. */
  readonly durationMs: number;
  /** Configured memory of the function, MB. */
  readonly memoryMb: number;
  readonly writeRequestUnits: number;
  readonly readRequestUnits: number;
  /** WebSocket messages sent (each event to each connection, in 32 KB units). */
  readonly webSocketMessages: number;
}

export interface ServerlessCostInput {
  readonly scheduleMinutes: number;
  readonly run: RunUsage;
  /** Control-plane connections open all month (connection-minutes). Default 1. */
  readonly connections?: number;
}

export interface CostBreakdown {
  readonly lambdaCompute: number;
  readonly lambdaRequests: number;
  readonly dynamoDb: number;
  readonly webSocket: number;
  readonly total: number;
}

/** Monthly cost (USD) of the serverless agent's discovery schedule plus one always-open relay connection. */
export function serverlessMonthlyCost(input: ServerlessCostInput, prices: Prices = PRICES): CostBreakdown {
  const runs = runsPerMonth(input.scheduleMinutes);
  const { run } = input;
  const gbSeconds = (run.durationMs / 1000) * (run.memoryMb / 1024);
  const lambdaCompute = runs * gbSeconds * prices.lambdaArmGbSecond.value;
  const lambdaRequests = runs * prices.lambdaRequest.value;
  const dynamoDb =
    runs *
    (run.writeRequestUnits * prices.dynamoWriteRequestUnit.value +
      run.readRequestUnits * prices.dynamoReadRequestUnit.value);
  const connectionMinutes = (input.connections ?? 1) * HOURS_PER_MONTH * 60;
  const webSocket =
    runs * run.webSocketMessages * prices.webSocketMessage.value +
    connectionMinutes * prices.webSocketConnectionMinute.value;
  return {
    lambdaCompute,
    lambdaRequests,
    dynamoDb,
    webSocket,
    total: lambdaCompute + lambdaRequests + dynamoDb + webSocket,
  };
}

/**
 * Monthly cost (USD) of an always-on container task on Fargate ARM. Fargate's smallest task is
 * 0.25 vCPU with 0.5 GB, so a 256–512 MiB agent container is billed as 0.25 vCPU / 0.5 GB.
 */
export function containerMonthlyCost(vcpu: number, memoryGb: number, prices: Prices = PRICES): number {
  return (
    HOURS_PER_MONTH * (vcpu * prices.fargateArmVcpuHour.value + memoryGb * prices.fargateArmGbHour.value)
  );
}

/** DynamoDB request units of one call, estimated from item sizes (bytes of the JSON attribute values). */
export interface CapacityEstimate {
  readonly wru: number;
  readonly rru: number;
}

/** Write request units of writing an item of `bytes` (1 per KB, at least 1; ×2 in a transaction). */
export function writeUnits(bytes: number, transactional = false): number {
  return Math.max(1, Math.ceil(bytes / 1024)) * (transactional ? 2 : 1);
}

/** Read request units of reading `bytes` (1 per 4 KB strongly consistent, half eventually consistent). */
export function readUnits(bytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(bytes / 4096));
  return consistent ? units : units / 2;
}
