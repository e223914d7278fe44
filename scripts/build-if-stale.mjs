// Compiles src/ to dist/ when any source is newer than the last build, so `npm start` and the
// operator commands always run current code without paying for a type-check on every start.
// Plain JavaScript on purpose: it runs before anything is compiled. In an image that ships
// dist/ without src/ (or without the compiler), there is nothing to do.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const marker = path.join(root, 'dist', '.tsbuildinfo');
const inputs = [path.join(root, 'src'), path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.build.json')];

function newestMtime(entry) {
  if (!existsSync(entry)) return 0;
  const stat = statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(entry).map((name) => newestMtime(path.join(entry, name))));
}

if (!existsSync(path.join(root, 'src'))) process.exit(0);
const built = existsSync(marker) ? statSync(marker).mtimeMs : 0;
if (Math.max(...inputs.map(newestMtime)) <= built) process.exit(0);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.error(
    'dist/ is older than src/, and the TypeScript compiler is not installed (npm ci --omit=dev?); running the existing build',
  );
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// tsc leaves its build info untouched when nothing changed; mark the build as current anyway.
if (result.status === 0 && existsSync(marker)) utimesSync(marker, new Date(), new Date());
process.exit(result.status ?? 1);
