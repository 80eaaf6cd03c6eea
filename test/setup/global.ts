/**
 * vitest globalSetup: makes sure moto is available before any test runs. A missing moto fails the run
 * with the install instructions; no emulator test is ever skipped for lack of it.
 * Each test file then starts its own moto server (test/support/emulator.ts).
 */
import { ensureMoto } from '../../emulator/moto.js';

export default async function setup(): Promise<void> {
  const { python } = await ensureMoto();
  process.env.MOTO_PYTHON = python;
}
