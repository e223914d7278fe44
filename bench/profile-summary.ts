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

/** Self milliseconds by bucket, idle excluded. */
export function summarize(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, bucketOf(n.callFrame)]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const bucket = byId.get(id) ?? 'other';
    if (bucket === '(idle)') return;
    totals.set(bucket, (totals.get(bucket) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return totals;
}

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: npm run bench:profile -- <directory of .cpuprofile files>');
  const report: Record<string, Record<string, number>> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const totals = summarize(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile);
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    console.log(`\n${file}: ${(all / 1000).toFixed(1)} s of CPU (idle excluded)`);
    const rows = [...totals].sort((a, b) => b[1] - a[1]);
    for (const [bucket, ms] of rows.slice(0, 16))
      console.log(
        `  ${bucket.padEnd(32)} ${ms.toFixed(0).padStart(8)} ms  ${((100 * ms) / all).toFixed(1).padStart(5)} %`,
      );
    report[file] = Object.fromEntries(rows.map(([bucket, ms]) => [bucket, Math.round(ms)]));
  }
  await mkdir('bench/results', { recursive: true });
  const out = `bench/results/profile-${new Date().toISOString().replaceAll(':', '-')}.json`;
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
