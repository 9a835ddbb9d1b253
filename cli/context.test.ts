import { describe, expect, it } from 'vitest';
import { sameServer } from './context.js';

describe('sameServer', () => {
  it('matches a context to the server however its address is spelled', () => {
    expect(sameServer('127.0.0.1:7433', 'tcp://127.0.0.1:7433')).toBe(true);
    expect(sameServer('unix:///run/cp.sock', 'unix:/run/cp.sock')).toBe(true);
    expect(sameServer('127.0.0.1:7433', 'tcps://127.0.0.1:7433')).toBe(false);
    expect(sameServer('127.0.0.1:7433', '127.0.0.1:7434')).toBe(false);
    expect(sameServer('not an address', 'not an address')).toBe(true);
    expect(sameServer('not an address', 'nor this')).toBe(false);
  });
});
