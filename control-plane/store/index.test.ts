import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { etcdEndpoints, openStore, StoreError } from './index.js';

describe('openStore', () => {
  it('opens the embedded store under the data dir when no URL is given', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'runmesh-open-'));
    try {
      const store = await openStore('', dir, pino({ level: 'silent' }));
      expect(store.kind).toBe('embedded');
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('maps etcd:// URLs to client endpoints', () => {
    expect(etcdEndpoints('etcd://a:2379,b:2380')).toEqual(['http://a:2379', 'http://b:2380']);
    expect(etcdEndpoints('etcd://127.0.0.1:2379')).toEqual(['http://127.0.0.1:2379']);
  });

  it('refuses anything else, naming the flag value', async () => {
    for (const url of ['redis://x:1', 'etcd://', 'etcd://host', 'a:1']) {
      await expect(openStore(url, os.tmpdir(), pino({ level: 'silent' }))).rejects.toThrow(StoreError);
      await expect(openStore(url, os.tmpdir(), pino({ level: 'silent' }))).rejects.toThrow(url);
    }
  });
});
