/**
 * `--config` and SIGHUP on real processes: a `runmesh server` started from a
 * config file, the file edited, SIGHUP sent. The rate limit it reloads changes
 * what a burst of calls gets, the log level changes what is logged, a key that
 * cannot change live is reported as needing a restart, and an invalid file is
 * refused with its key and line while everything stays as it was. An agent
 * reloads its --trusted-keys file the same way.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, TestClient } from './support/client.js';
import { waitUntil } from './support/wait.js';
import { startAgent, startServer, stopAll, tempDir, waitForOutput, type Proc, type ServerProc } from './support/processes.js';

let cp: ServerProc;
let client: TestClient;
let config: string;

beforeAll(async () => {
  const dir = await tempDir('runmesh-config-');
  config = join(dir, 'runmesh.yaml');
  writeFileSync(config, 'log-level: warn\nrate-token: 100\ntenant-weight: [a=1]\n');
  // The file's log level wins over RUNMESH_LOG_LEVEL=info, which the helper sets.
  cp = await startServer({ args: ['--config', config] });
  client = new TestClient(cp.address, adminToken(cp.dataDir));
});

afterAll(async () => {
  client?.close();
  await stopAll();
});

/** `calls` Status calls at once: how many were refused for the rate. */
async function refusedOf(calls: number): Promise<number> {
  const results = await Promise.allSettled(Array.from({ length: calls }, () => client.status()));
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as ServiceError] : []));
  for (const e of errors) expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
  return errors.length;
}

/** Sends SIGHUP and waits for the `n`th line matching `pattern` (counted over the whole output). */
async function hangUp(p: Proc, pattern: RegExp, n = 1): Promise<void> {
  p.proc.kill('SIGHUP');
  const all = new RegExp(pattern.source, 'g');
  await waitForOutput(p, new RegExp(`(?:${pattern.source}[^]*){${n}}`));
  expect(p.output().match(all)?.length).toBe(n);
}

const lines = (p: Proc, msg: string): Record<string, unknown>[] =>
  p
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('config file reload on SIGHUP', () => {
  it('applies the rate limit and the log level live, reports what needs a restart, and refuses an invalid file whole', async () => {
    expect(await refusedOf(6)).toBe(0);
    // At level warn the reload's info lines are not written: the new rate limit shows that it happened.
    writeFileSync(config, 'log-level: warn\nrate-token: 1\ntenant-weight: [a=1]\n');
    cp.proc.kill('SIGHUP');
    // One token, one call a second, bursts of two: most of six at once are refused.
    await waitUntil(async () => (await refusedOf(6)) >= 3, { what: 'the reloaded rate limit' });
    expect(lines(cp, 'reloaded')).toEqual([]);

    writeFileSync(config, 'log-level: info\nrate-token: 1\ntenant-weight: [a=3, b=1]\nmax-ended-jobs: 5\n');
    await hangUp(cp, /"msg":"changed in the config file: needs a restart, not applied"/);
    const reloaded = Object.fromEntries(lines(cp, 'reloaded').map((l): [string, unknown[]] => [String(l.key), [l.from, l.to]]));
    expect(reloaded).toEqual({ 'log-level': ['warn', 'info'], 'tenant-weight': [['a=1'], ['a=3', 'b=1']] });
    expect(lines(cp, 'changed in the config file: needs a restart, not applied')).toMatchObject([{ key: 'max-ended-jobs', to: 5 }]);

    // Level info now: a file back to what runs is said to be unchanged.
    const running = 'log-level: info\nrate-token: 1\ntenant-weight: [a=3, b=1]\n';
    writeFileSync(config, running);
    await hangUp(cp, /"msg":"SIGHUP: nothing changed"/);

    writeFileSync(config, 'log-level: warn\nrate-token: 100\nbogus: 1\n');
    await hangUp(cp, /"msg":"SIGHUP: the config file is refused; nothing changed"/);
    expect(lines(cp, 'SIGHUP: the config file is refused; nothing changed')[0]?.err).toMatch(/runmesh\.yaml:3: bogus: unknown key/);
    writeFileSync(config, 'log-level: warn\nrate-token: 100\ntenant-weight: [a=0]\n');
    await hangUp(cp, /"msg":"SIGHUP: the config file is refused; nothing changed"/, 2);
    expect(lines(cp, 'SIGHUP: the config file is refused; nothing changed')[1]?.err).toMatch(
      /runmesh\.yaml:3: tenant-weight: a=0: the weight must be a positive number/,
    );
    // Nothing of the refused files was applied: still the reloaded limit, still level info, still the same weights.
    expect(await refusedOf(6)).toBeGreaterThanOrEqual(3);
    writeFileSync(config, running);
    await hangUp(cp, /"msg":"SIGHUP: nothing changed"/, 2);
    expect(lines(cp, 'reloaded')).toHaveLength(2);
  });

  it("reloads an agent's trusted keys from its file, and keeps them when the file is bad", async () => {
    const dir = await tempDir('runmesh-keys-');
    const keys = join(dir, 'trusted.jwks');
    const jwks = (kid: string): string => {
      const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
      return JSON.stringify({ keys: [{ ...jwk, kid }] });
    };
    writeFileSync(keys, jwks('first'));
    const agentConfig = join(dir, 'agent.yaml');
    writeFileSync(agentConfig, `trusted-keys: ${keys}\nmemory: 1000\n`);
    const agent = await startAgent(cp.address, { name: 'reloading', args: ['--config', agentConfig] });
    await waitForOutput(agent, /"msg":"connected"/);
    writeFileSync(keys, jwks('second'));
    await hangUp(agent, /"msg":"reloaded: trusted key ids"/);
    expect(lines(agent, 'reloaded: trusted key ids')).toMatchObject([{ key: 'trusted-keys', from: ['first'], to: ['second'] }]);
    writeFileSync(keys, '{"keys": []}');
    await hangUp(agent, /"msg":"SIGHUP: the config file is refused; nothing changed"/);
    expect(lines(agent, 'SIGHUP: the config file is refused; nothing changed')[0]?.err).toMatch(/no Ed25519 public key/);
    writeFileSync(agentConfig, `trusted-keys: ${keys}\nmemory: 2000\n`);
    writeFileSync(keys, jwks('second'));
    await hangUp(agent, /"msg":"changed in the config file: needs a restart, not applied"/);
    expect(lines(agent, 'changed in the config file: needs a restart, not applied')).toMatchObject([
      { key: 'memory', from: 1000, to: 2000 },
    ]);
  });
});
