/**
 * Finds secret forms in bytes, leftmost first and longest at a position,
 * without ever deciding on bytes it has not seen: at a position where the
 * bytes so far are a proper prefix of some form, the answer is "undecided"
 * until more bytes come (or the stream ends). That is the whole of what the
 * streaming maskers (replacer.ts, records.ts) build on, and why what they hold
 * back is at most the longest form less one byte.
 */

/** What the output shows in place of a secret. */
export const REPLACEMENT = Buffer.from('***');

export type Verdict = { kind: 'none' } | { kind: 'match'; length: number } | { kind: 'undecided' };

const NONE: Verdict = { kind: 'none' };
const UNDECIDED: Verdict = { kind: 'undecided' };

export class Matcher {
  /** Forms by their first byte. */
  private readonly byFirst: Array<Buffer[] | undefined> = [];
  readonly maxLength: number;

  constructor(forms: readonly Buffer[]) {
    for (const f of forms) if (f.length > 0) (this.byFirst[f[0]!] ??= []).push(f);
    this.maxLength = forms.reduce((n, f) => Math.max(n, f.length), 0);
  }

  /** True when there is nothing to mask. */
  get empty(): boolean {
    return this.maxLength === 0;
  }

  /** The first position at or after `from` where a form could start, or `buf.length`. */
  nextCandidate(buf: Buffer, from: number): number {
    for (let i = from; i < buf.length; i++) if (this.byFirst[buf[i]!]) return i;
    return buf.length;
  }

  /**
   * What starts at `at`: the longest form there, or none, or undecided when
   * a form (possibly longer than one that matches) runs past the end of
   * `buf` with the bytes so far agreeing, and more may come (`!ended`).
   */
  at(buf: Buffer, at: number, ended: boolean): Verdict {
    const forms = this.byFirst[buf[at]!];
    if (!forms) return NONE;
    const avail = buf.length - at;
    let best = 0;
    for (const f of forms) {
      if (f.length <= avail) {
        if (f.length > best && buf.compare(f, 0, f.length, at, at + f.length) === 0) best = f.length;
      } else if (!ended && buf.compare(f, 0, avail, at, buf.length) === 0) return UNDECIDED;
    }
    return best > 0 ? { kind: 'match', length: best } : NONE;
  }
}

/** `text` with every form replaced: for whole texts (an attempt's result message), not streams. */
export function maskText(matcher: Matcher, text: string): string {
  if (matcher.empty || text === '') return text;
  const buf = Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const q = matcher.nextCandidate(buf, p);
    out.push(buf.subarray(p, q));
    if (q === buf.length) break;
    const v = matcher.at(buf, q, true);
    if (v.kind === 'match') {
      out.push(REPLACEMENT);
      p = q + v.length;
    } else {
      out.push(buf.subarray(q, q + 1));
      p = q + 1;
    }
  }
  return Buffer.concat(out).toString('utf8');
}
