/**
 * What to mask for a set of secret values: each value as it is, each line of
 * a multi-line value, and the encodings a job is likely to print them in
 * (base64 in its three alignments, URL/percent and form encoding, JSON string
 * escapes). A value is matched byte for byte in its UTF-8 form.
 */

/** Lines of a multi-line value shorter than this are not masked on their own (a `}` line of a JSON key): the whole value still is. */
export const MIN_LINE_BYTES = 4;
/**
 * A base64 form that depends on how the value was aligned inside what was
 * encoded (`user:TOKEN` | base64) keeps only the characters the value alone
 * decides: fewer than this would match by chance.
 */
export const MIN_SHIFTED_BASE64 = 8;

/** Every form of every value, deduplicated, longest first. Empty values have none. */
export function maskForms(values: Iterable<string>): Buffer[] {
  const forms = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    for (const f of formsOf(value)) forms.add(f);
    const lines = value.split('\n').map((l) => l.replace(/\r$/, ''));
    if (lines.length < 2) continue;
    for (const line of lines) {
      for (const l of new Set([line, line.trim()])) if (Buffer.byteLength(l) >= MIN_LINE_BYTES) for (const f of formsOf(l)) forms.add(f);
    }
  }
  return [...forms].map((f) => Buffer.from(f, 'binary')).sort((a, b) => b.length - a.length);
}

/** A text's forms, each as a 'binary' string (one char per byte) so the set dedupes bytes. */
function formsOf(text: string): string[] {
  const raw = Buffer.from(text, 'utf8');
  const out = [raw.toString('binary'), ...jsonForms(text), ...percentForms(text), ...base64Forms(raw)];
  return out.filter((f) => f.length > 0);
}

function jsonForms(text: string): string[] {
  const escaped = JSON.stringify(text).slice(1, -1);
  // ensure_ascii encoders (Python's json.dumps) write every non-ASCII character as \uXXXX.
  const ascii = escaped.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const slashes = escaped.replace(/\//g, '\\/'); // PHP and some Go encoders escape '/'
  return [escaped, ascii, slashes].map(utf8Binary);
}

function percentForms(text: string): string[] {
  const strict = encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const plain = encodeURIComponent(text);
  const forms = [strict, plain];
  for (const f of [strict, plain]) {
    forms.push(f.replace(/%20/g, '+')); // application/x-www-form-urlencoded
    forms.push(f.replace(/%2F/g, '/')); // Python's quote() keeps '/'
    forms.push(f.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()));
  }
  return forms;
}

/**
 * Standard and URL-safe base64 of the value on its own (padded and not),
 * and the characters that encode only the value when it starts one or two
 * bytes into a 3-byte group, with or without a known prefix before it.
 */
function base64Forms(raw: Buffer): string[] {
  const forms: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw, Buffer.alloc(2)]).toString('base64');
    // Characters j whose 6 bits lie within the value's bits [8*shift, 8*(shift+len)).
    const first = Math.ceil((8 * shift) / 6);
    const last = Math.floor((8 * (shift + raw.length)) / 6); // exclusive
    const core = padded.slice(first, last);
    if (shift === 0) {
      const whole = raw.toString('base64');
      forms.push(whole, whole.replace(/=+$/, ''));
    }
    if (shift === 0 || core.length >= MIN_SHIFTED_BASE64) forms.push(core);
  }
  return [...forms, ...forms.map((f) => f.replace(/\+/g, '-').replace(/\//g, '_'))];
}

const utf8Binary = (s: string): string => Buffer.from(s, 'utf8').toString('binary');
