/**
 * Every runtime dependency in package.json is used by the code under src/ — imported, or resolved
 * as a module path (the simulator serves browser bundles with require.resolve) — since a
 * dependency the image ships but nothing loads is dead weight and attack surface.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/process.js';

/** dependencies whose importer lands on another branch first, with where it comes from */
const ARRIVING: Readonly<Record<string, string>> = {
  ioredis: 'the Redis session store for several replicas (issue 12)',
};

/** dev dependencies the code loads optionally (with a fallback when they are not installed) */
const OPTIONAL_DEV: Readonly<Record<string, string>> = {
  'pino-pretty': 'readable demo logs on a terminal (src/demo.ts); JSON lines without it',
  'playwright-core': 'npm run doctor watches the dashboard in Chromium when it is installed',
};

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}
const code = sources(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
const importRe = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;
const imported = new Set([...code.matchAll(importRe)].map((m) => m[1]!.split('/').slice(0, m[1]!.startsWith('@') ? 2 : 1).join('/')));
/** a package named as a module path in a string: `'sockjs-client/dist/sockjs.min.js'` */
const named = (pkgName: string) => new RegExp(`['"]${pkgName.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?:/[^'"]*)?['"]`).test(code);

t.test('every runtime dependency is used under src/', async (t) => {
  t.ok(imported.has('fastify'), 'the import scan finds imports at all');
  t.notOk(named('no-such-package'), 'and the module-path scan is not fooled by anything');
  for (const name of Object.keys(pkg.dependencies)) {
    if (imported.has(name) || named(name)) t.pass(`${name} is imported or resolved`);
    else t.ok(ARRIVING[name], `${name} is in package.json but nothing under src/ imports or resolves it`);
  }
});

t.test('nothing is imported from a package that is not a dependency', async (t) => {
  const deps = new Set(Object.keys(pkg.dependencies));
  for (const name of imported) {
    if (name.startsWith('.') || name.startsWith('node:')) continue;
    if (OPTIONAL_DEV[name]) {
      t.ok(pkg.devDependencies[name], `${name} (optional: ${OPTIONAL_DEV[name]}) is a dev dependency`);
      continue;
    }
    t.ok(deps.has(name), `${name} is imported by src/ and listed in "dependencies" (not only devDependencies)`);
  }
});
