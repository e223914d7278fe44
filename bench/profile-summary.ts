/**
 * `npm run bench:profile -- <dir>`: where a process's CPU went, from the V8 CPU profiles that
 * `BENCH_PROFILE_DIR=<dir> npm run bench:cost` makes (one .cpuprofile per service process).
 *
 * Self time is summed by where the code lives: a package under node_modules (kafkajs, pg,
 * fastify, ...), a folder of this project's src/, Node's own modules, V8 builtins (JSON.parse,
 * ...), the garbage collector and "(program)" (native work outside JavaScript: syscalls, the
 * event loop). Idle time is left out. This is the budget that says whether the Kafka client is
 * the largest item left in the gateway and the consumer (issue 19, item 6).
 * Prints a table per profile and writes bench/results/profile-<time>.json.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The bucket a function's self time goes to. */
export function bucketOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(V8 builtins)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/');
    return scope!.startsWith('@') ? `${scope}/${name}` : scope!;
  }
  if (url.startsWith('node:')) return 'node (runtime)';
  const src = url.indexOf('/src/');
  if (src >= 0) {
    const rest = url.slice(src + 1).split('/');
    return rest.length > 2 ? `${rest[0]}/${rest[1]}` : rest.join('/');
  }
  return 'other';
}

/** Buckets that are nobody's own code: the runtime and V8 work is charged to whoever called it. */
const SHARED_BUCKETS = new Set(['node (runtime)', '(V8 builtins)', 'other']);

/**
 * Milliseconds by bucket, idle excluded. `self`: where the sampled function lives. `byCaller`:
 * runtime and V8 time (socket writes, JSON, Buffer copies) charged to the nearest caller in a
 * package or in src/, so that a client library's system calls count as that library's.
 */
export function summarize(profile: CpuProfile): { self: Map<string, number>; byCaller: Map<string, number> } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parents = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
  const ownerCache = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const cached = ownerCache.get(id);
    if (cached !== undefined) return cached;
    const bucket = bucketOf(nodes.get(id)!.callFrame);
    const parent = parents.get(id);
    const owner = SHARED_BUCKETS.has(bucket) && parent !== undefined ? ownerOf(parent) : bucket;
    ownerCache.set(id, owner);
    return owner;
  };
  const self = new Map<string, number>();
  const byCaller = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id);
    const bucket = node ? bucketOf(node.callFrame) : 'other';
    if (bucket === '(idle)') return;
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    self.set(bucket, (self.get(bucket) ?? 0) + ms);
    const owner = node ? ownerOf(id) : 'other';
    byCaller.set(owner, (byCaller.get(owner) ?? 0) + ms);
  });
  return { self, byCaller };
}

function printTable(title: string, totals: Map<string, number>): Record<string, number> {
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  console.log(`  ${title}`);
  const rows = [...totals].sort((a, b) => b[1] - a[1]);
  for (const [bucket, ms] of rows.slice(0, 12))
    console.log(
      `    ${bucket.padEnd(30)} ${ms.toFixed(0).padStart(8)} ms  ${((100 * ms) / all).toFixed(1).padStart(5)} %`,
    );
  return Object.fromEntries(rows.map(([bucket, ms]) => [bucket, Math.round(ms)]));
}

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: npm run bench:profile -- <directory of .cpuprofile files>');
  const report: Record<string, unknown> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const { self, byCaller } = summarize(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile);
    const all = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`\n${file}: ${(all / 1000).toFixed(1)} s of CPU (idle excluded)`);
    report[file] = {
      self: printTable('self time, by where the code lives', self),
      byCaller: printTable('runtime and V8 time charged to its caller', byCaller),
    };
  }
  await mkdir('bench/results', { recursive: true });
  const out = `bench/results/profile-${new Date().toISOString().replaceAll(':', '-')}.json`;
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
