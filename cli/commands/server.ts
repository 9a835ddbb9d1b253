/** The commands that run runmesh itself: `server` (a control-plane peer), `agent`, and `dev` (both in one process). */
import type { Command } from 'commander';
import { registerAgent } from './agent.js';
import { registerDev } from './dev.js';
import { registerServe } from './serve.js';

export function registerServerCommands(program: Command): void {
  registerServe(program);
  registerAgent(program);
  registerDev(program);
}
