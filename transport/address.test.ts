import { describe, expect, it } from 'vitest';
import { parseAddress } from './address.js';
import { isInvalidAddress, isTransportError } from './errors.js';

describe('parseAddress', () => {
  it.each([
    ['tcp://10.0.0.1:7000', 'tcp://10.0.0.1:7000', 'tcp', false],
    ['127.0.0.1:7000', 'tcp://127.0.0.1:7000', 'tcp', false],
    ['localhost:7000', 'tcp://localhost:7000', 'tcp', false],
    ['[::1]:7000', 'tcp://[::1]:7000', 'tcp', false],
    ['tcps://cp.example:443', 'tcps://cp.example:443', 'tcps', true],
    ['TCPS://cp.example:443', 'tcps://cp.example:443', 'tcps', true],
    ['unix:///run/runmesh.sock', 'unix:///run/runmesh.sock', 'unix', false],
    ['unix:/run/runmesh.sock', 'unix:///run/runmesh.sock', 'unix', false],
    ['ws://cp:8080/agent', 'ws://cp:8080/agent', 'ws', false],
    ['ws://cp', 'ws://cp:80/agent', 'ws', false],
    ['wss://cp.example/tunnel?v=1', 'wss://cp.example:443/tunnel?v=1', 'wss', true],
    ['wss://[::1]:8443/agent', 'wss://[::1]:8443/agent', 'wss', true],
  ])('%s', (text, address, scheme, encrypted) => {
    expect(parseAddress(text)).toMatchObject({ address, scheme, encrypted });
  });

  it('splits host, port and path', () => {
    expect(parseAddress('wss://[::1]:8443/agent')).toMatchObject({ host: '::1', port: 8443, path: '/agent' });
    expect(parseAddress('unix:///tmp/a.sock')).toMatchObject({ host: '', port: 0, path: '/tmp/a.sock' });
  });

  it.each([
    ['', 'empty'],
    ['garbage', 'expected host:port'],
    ['tcp://host', 'expected host:port'],
    ['tcp://host:70000', 'port out of range'],
    ['tcp:host:1', 'expected "//"'],
    ['unix://relative.sock', 'absolute path'],
    ['ws://user:pw@cp/agent', 'credentials'],
    ['http://cp:80', 'unknown scheme "http"'],
    ['quic://cp:443', 'quic: not supported by this Node runtime'],
  ])('rejects %j (%s), naming the text', (text, detail) => {
    let err: unknown;
    try {
      parseAddress(text);
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err)).toBe(true);
    expect(isInvalidAddress(err)).toBe(true);
    expect((err as Error).message).toContain(`"${text}"`);
    expect((err as Error).message).toContain(detail);
  });
});
