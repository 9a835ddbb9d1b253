import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAddress } from './address.js';
import { bypassesProxy, grpcProxyOptions, webSocketProxy } from './proxy.js';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { ConnectProxy } from './testing/relays.js';
import { healthCheck } from './testing/services.js';
import { startTransport, type Running } from './testing/setups.js';

describe('proxy settings from the environment', () => {
  const wss = parseAddress('wss://cp.corp.example:443/agent');
  const ws = parseAddress('ws://cp.corp.example:80/agent');

  it('picks HTTPS_PROXY for wss and HTTP_PROXY for ws, lowercase first', () => {
    const env = { HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128', HTTP_PROXY: 'http://plain:3128' };
    expect(webSocketProxy(wss, env)).toBe('http://lower:3128');
    expect(webSocketProxy(ws, env)).toBe('http://plain:3128');
    expect(webSocketProxy(wss, { HTTP_PROXY: 'http://plain:3128' })).toBe('http://plain:3128');
    expect(webSocketProxy(wss, {})).toBeUndefined();
    expect(webSocketProxy(parseAddress('tcp://cp:1'), env)).toBeUndefined();
  });

  it.each([
    ['*', 'anything', 1, true],
    ['corp.example', 'cp.corp.example', 443, true],
    ['.corp.example', 'cp.corp.example', 443, true],
    ['*.corp.example', 'cp.corp.example', 443, true],
    ['corp.example', 'notcorp.example', 443, false],
    ['a, b ,cp.corp.example:443', 'cp.corp.example', 443, true],
    ['cp.corp.example:80', 'cp.corp.example', 443, false],
    ['::1', '::1', 7000, true],
    ['[::1]:7000', '::1', 7000, true],
    ['127.0.0.1', '127.0.0.1', 7000, true],
  ])('NO_PROXY=%j for %s:%d bypasses: %s', (list, host, port, expected) => {
    expect(bypassesProxy(host, port, { NO_PROXY: list })).toBe(expected);
  });

  it('maps an uppercase NO_PROXY onto grpc-js for tcp targets', () => {
    expect(grpcProxyOptions(parseAddress('tcp://cp.corp.example:7000'), { NO_PROXY: 'corp.example' })).toEqual({
      'grpc.enable_http_proxy': 0,
    });
    expect(grpcProxyOptions(parseAddress('tcp://cp.other:7000'), { NO_PROXY: 'corp.example' })).toEqual({});
  });
});

describe('wss through an HTTP CONNECT proxy', () => {
  let tmp: string;
  let certs: TestCerts;
  let running: Running;
  let proxy: ConnectProxy;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-proxy-'));
    certs = makeTestCerts(tmp);
    running = await startTransport('wss', certs, tmp);
    proxy = await ConnectProxy.start();
  });
  afterAll(async () => {
    await running.close();
    await proxy.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('tunnels through the proxy named by HTTPS_PROXY, TLS verified end to end', async () => {
    const { client } = await running.connect({ env: { HTTPS_PROXY: proxy.url } });
    await expect(healthCheck(client)).resolves.toBe('SERVING');
    expect(proxy.connects).toBe(1);
  });

  it('goes direct when NO_PROXY names the host', async () => {
    const before = proxy.connects;
    const { client } = await running.connect({ env: { HTTPS_PROXY: proxy.url, no_proxy: '127.0.0.1' } });
    await expect(healthCheck(client)).resolves.toBe('SERVING');
    expect(proxy.connects).toBe(before);
  });
});
