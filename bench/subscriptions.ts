import type { DiscoveryScenarioResult } from './discovery.js';
import type { BenchEnv } from './env.js';
import type { Figure } from './lib/report.js';

export async function benchSubscriptions(
  _env: BenchEnv,
  _scenario: DiscoveryScenarioResult,
  progress: (m: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  progress('subscriptions: not measured yet');
  return { figures: [], details: {} };
}
