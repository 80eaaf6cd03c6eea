import type { DiscoveryScenarioResult } from './discovery.js';
import type { BenchEnv } from './env.js';
import type { Figure } from './lib/report.js';

export async function benchRelay(
  _env: BenchEnv,
  _scenario: DiscoveryScenarioResult,
  progress: (m: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  progress('relay: not measured yet');
  return { figures: [], details: {} };
}
