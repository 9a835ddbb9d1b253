import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { etcdEndpoints, NO_ETCD_FLAGS, openStore, StoreError } from './index.js';

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

  it('maps etcds:// and https:// URLs to TLS endpoints', () => {
    expect(etcdEndpoints('etcds://a:2379,b:2379')).toEqual(['https://a:2379', 'https://b:2379']);
    expect(etcdEndpoints('https://[::1]:2379')).toEqual(['https://[::1]:2379']);
  });

  it('refuses --etcd-* flags that do not fit the store address, naming them', async () => {
    const open = (url: string, flags: Partial<typeof NO_ETCD_FLAGS>): Promise<unknown> =>
      openStore(url, os.tmpdir(), pino({ level: 'silent' }), { ...NO_ETCD_FLAGS, ...flags });
    await expect(open('', { user: 'u' })).rejects.toThrow('--etcd-user goes with an etcd --store');
    await expect(open('etcd://127.0.0.1:1', { ca: '/ca.pem' })).rejects.toThrow('need a TLS store address: etcds://127.0.0.1:1');
    await expect(open('etcds://127.0.0.1:1', { cert: '/c.pem' })).rejects.toThrow('--etcd-cert and --etcd-key go together');
    await expect(open('etcd://127.0.0.1:1', { user: 'u' })).rejects.toThrow('--etcd-user and --etcd-password-file go together');
    await expect(open('etcds://127.0.0.1:1', { ca: '/nonexistent/ca.pem' })).rejects.toThrow('--etcd-ca /nonexistent/ca.pem: ENOENT');
  });

  it('refuses anything else, naming the flag value', async () => {
    for (const url of ['redis://x:1', 'etcd://', 'etcd://host', 'a:1']) {
      await expect(openStore(url, os.tmpdir(), pino({ level: 'silent' }))).rejects.toThrow(StoreError);
      await expect(openStore(url, os.tmpdir(), pino({ level: 'silent' }))).rejects.toThrow(url);
    }
  });
});
