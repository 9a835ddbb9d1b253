/** The log record frame, on disk in the agent spool and the control plane log blobs alike: [u8 stream][u32be length][bytes]. */

export const HEADER = 5;

export interface Frame {
  stream: number;
  data: Buffer;
}

export function encodeFrame(stream: number, data: Uint8Array): Buffer {
  return Buffer.concat([frameHeader(stream, data.length), data], HEADER + data.length);
}

/** A frame's header alone, to write before `length` bytes of data without copying them (writev). */
export function frameHeader(stream: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER);
  out.writeUInt8(stream, 0);
  out.writeUInt32BE(length, 1);
  return out;
}

/** Offsets of the complete frames in `buf` (starting at `base`), and where the complete part ends. */
export function scanFrames(buf: Buffer, base: number): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    if (at + HEADER + len > buf.length) break;
    offsets.push(base + at);
    at += HEADER + len;
  }
  return { offsets, end: base + at };
}

export function decodeFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    out.push({ stream: buf.readUInt8(at), data: buf.subarray(at + HEADER, at + HEADER + len) });
    at += HEADER + len;
  }
  return out;
}
