import { describe, expect, it } from 'vitest';
import { parseFingerprint } from '../transport/index.js';
import { formatJoinString, parseJoinString } from './join-string.js';

const FP = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('join strings', () => {
  it('split into the token and the CA fingerprint, and back', () => {
    const joined = formatJoinString('rmt_0123456789abcdef_A-b_c', FP);
    expect(joined).toBe(`rmt_0123456789abcdef_A-b_c@${FP}`);
    expect(parseJoinString(joined)).toEqual({ token: 'rmt_0123456789abcdef_A-b_c', fingerprint: FP });
  });

  it('leave a plain token (a static --join-token, an older server) as it is', () => {
    expect(parseJoinString('rmj_static-token')).toEqual({ token: 'rmj_static-token', fingerprint: '' });
    expect(formatJoinString('rmj_static-token', '')).toBe('rmj_static-token');
    expect(parseJoinString('user@host')).toEqual({ token: 'user@host', fingerprint: '' });
  });

  it('fingerprints are read in any case, with or without colons, and refused when malformed', () => {
    const colons = `SHA256:${FP.slice(7).toUpperCase().match(/../g)?.join(':')}`;
    expect(parseFingerprint(colons)).toBe(FP);
    expect(() => parseFingerprint('sha256:abc')).toThrow(/expected sha256:<64 hex digits>/);
  });
});
