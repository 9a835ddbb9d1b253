/** Small formatting helpers for tables. */
export function ago(iso: string, now = Date.now()): string {
  if (!iso) return '';
  return duration(now - Date.parse(iso)) + ' ago';
}

export function duration(ms: number): string {
  if (!(ms >= 0)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function mib(bytes: string): string {
  return bytes ? `${(Number(bytes) / 1048576).toFixed(1)} MiB` : '';
}

export const time = (iso: string): string => (iso ? new Date(iso).toLocaleString() : '');

/** A size as people read it: `812 B`, `1.5 KiB`, `12.3 MiB` (bytes as the API's decimal string). */
export function bytes(text: string): string {
  let n = Number(text);
  if (!(n >= 1024)) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let unit = -1;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(1)} ${units[unit]}`;
}
