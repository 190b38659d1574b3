import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

/**
 * Finds the web client's folder: `src/web` of the package, whether this module runs from `src/`
 * (tests) or from `dist/` (the built CLI).
 */
export function findWebRoot(): string {
  const candidates = [new URL('../web/', import.meta.url), new URL('../../src/web/', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(join(p, 'index.html'))) return p;
  }
  return fileURLToPath(candidates[1]!);
}

/** A static file ready to serve. */
export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

/**
 * Serves the files of one flat folder by name, read once and cached (the web client is a few small
 * files). Names are matched against the folder's own listing, so no path can escape it.
 */
export class StaticFiles {
  private readonly cache = new Map<string, Promise<StaticFile | undefined>>();

  constructor(private readonly root: string, private readonly names: ReadonlySet<string>) {}

  /** The file for a URL path (`/` is `index.html`), or undefined. */
  get(urlPath: string): Promise<StaticFile | undefined> {
    const name = urlPath === '/' ? 'index.html' : urlPath.slice(1);
    if (!this.names.has(name)) return Promise.resolve(undefined);
    let hit = this.cache.get(name);
    if (!hit) {
      hit = readFile(join(this.root, name)).then(
        (body) => ({ type: TYPES[extname(name)] ?? 'application/octet-stream', body }),
        () => undefined,
      );
      this.cache.set(name, hit);
    }
    return hit;
  }
}
