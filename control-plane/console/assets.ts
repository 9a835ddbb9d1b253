/**
 * The console's page and bundle, built by `npm run build` into dist/console
 * (web/build.mjs) and served from the package: nothing is fetched from
 * elsewhere at run time. Read once, on first use; every page path answers the
 * same index.html, and the page routes itself.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { SAFE_HEADERS } from './http-io.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Paths the page routes itself. */
const PAGES = [/^\/$/, /^\/signin$/, /^\/agents$/, /^\/jobs$/, /^\/jobs\/[^/]+$/];

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export class Assets {
  private loaded: Promise<Map<string, Asset>> | undefined;

  constructor(private readonly dir: string) {}

  /** True when it answered `path` (a page or a file of the bundle). */
  async serve(path: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const page = PAGES.some((p) => p.test(path));
    if (!page && !path.startsWith('/assets/')) return false;
    const files = await (this.loaded ??= this.load());
    const asset = files.get(page ? 'index.html' : path.slice('/assets/'.length));
    if (!asset) {
      if (!page) return false;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('the console is not built: run npm run build\n');
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return true;
    }
    const headers = { ...SAFE_HEADERS, 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (req.headers['if-none-match'] === asset.etag) res.writeHead(304, headers).end();
    else res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  }

  private async load(): Promise<Map<string, Asset>> {
    const out = new Map<string, Asset>();
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const type = TYPES[extname(name)];
      if (!type) continue;
      const body = await readFile(join(this.dir, name));
      out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
    }
    if (out.size === 0) this.loaded = undefined; // built later (a dev's `npm run build`): look again next time
    return out;
  }
}
