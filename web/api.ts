/** The console API from the page: JSON over fetch, the session's CSRF token on every mutation. */
import type { SessionInfo } from '../control-plane/console/wire.js';

let csrf = '';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-runmesh-csrf'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const json = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}): Promise<T> => call<T>('POST', path, body);

export async function whoami(): Promise<SessionInfo | undefined> {
  try {
    const s = await get<SessionInfo>('/api/session');
    csrf = s.csrf ?? '';
    return s;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    throw err;
  }
}

export async function signIn(token: string): Promise<SessionInfo> {
  const s = await call<SessionInfo>('POST', '/api/session', { token });
  csrf = s.csrf ?? '';
  return s;
}

export async function signOut(): Promise<void> {
  await call('DELETE', '/api/session');
  csrf = '';
}
