/**
 * `npm run walkthrough`: runs every example of the README and docs/walkthrough.md in order, as
 * a new user would, on a fresh database against `npm start` (its own, on free ports), and
 * compares each shown answer with the one it gets now (instants, ids and cursors aside; see
 * engine.ts). Exits 1 naming each step that differs. `-- --write` writes the new answers into
 * the docs instead. The walkthrough test runs the same comparison.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../src/stack/local-kafka.ts';
import { withSection } from './docs.ts';
import { difference, parseSection, renderSection, Session, shownLines, type StepRun } from './walkthrough/engine.ts';
import { startWalkthroughStack } from './walkthrough/stack.ts';
import { SECTIONS } from './walkthrough/steps.ts';

const WRITE_COMMAND = 'npm run walkthrough -- --write';

/** Runs every section's steps in one shell against `env`'s stack; the runs by section id. */
export async function runWalkthrough(env: Record<string, string>): Promise<Map<string, StepRun[]>> {
  // Only what a terminal has, and the stack's variables: a DATABASE_URL or KAFKA_BROKERS of the
  // caller's (a test run's) must not point the operator commands at another stack.
  const { PATH, HOME, LANG, TMPDIR } = process.env;
  const session = new Session({ PATH, HOME, LANG, TMPDIR, ...env }, REPO_ROOT);
  const runs = new Map<string, StepRun[]>();
  try {
    for (const section of SECTIONS) {
      const done: StepRun[] = [];
      for (const step of section.steps) done.push(await session.runStep(step));
      runs.set(section.id, done);
    }
  } finally {
    session.close();
  }
  return runs;
}

/** The text between a section's markers in its file. */
export async function shownSection(file: string, id: string): Promise<string> {
  const text = await readFile(path.join(REPO_ROOT, file), 'utf8');
  const begin = text.indexOf(`<!-- generated: walkthrough-${id} (${WRITE_COMMAND}) -->`);
  const end = text.indexOf(`<!-- end: walkthrough-${id} -->`);
  if (begin < 0 || end < begin) throw new Error(`${file} has no walkthrough-${id} section`);
  return text.slice(text.indexOf('\n', begin) + 1, end).trim();
}

/** Each step whose shown command or answer differs from this run's, described; empty when none. */
export async function compareWithDocs(runs: Map<string, StepRun[]>): Promise<string[]> {
  const problems: string[] = [];
  for (const section of SECTIONS) {
    const shown = parseSection(await shownSection(section.file, section.id));
    const actual = runs.get(section.id)!;
    if (shown.length !== actual.length) {
      problems.push(`${section.file} walkthrough-${section.id}: ${shown.length} steps shown, ${actual.length} run`);
      continue;
    }
    actual.forEach((run, i) => {
      const where = `${section.file} walkthrough-${section.id}, step ${i + 1} (${run.step.run.split('\n')[0]})`;
      if (shown[i]!.run !== run.step.run) problems.push(`${where}: the command shown is not the one run`);
      const differs = difference(run.step, shown[i]!.shown, shownLines(run.step, run.output));
      if (differs) problems.push(`${where}: the answer differs, ${differs}`);
    });
  }
  return problems;
}

async function writeDocs(runs: Map<string, StepRun[]>): Promise<void> {
  for (const section of SECTIONS) {
    const file = path.join(REPO_ROOT, section.file);
    const text = await readFile(file, 'utf8');
    const body = renderSection(runs.get(section.id)!);
    await writeFile(file, withSection(text, `walkthrough-${section.id}`, body, WRITE_COMMAND));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const stack = await startWalkthroughStack();
  try {
    const runs = await runWalkthrough(stack.env);
    if (process.argv.includes('--write')) {
      await writeDocs(runs);
      console.log(`wrote ${[...new Set(SECTIONS.map((s) => s.file))].join(', ')}`);
    } else {
      const problems = await compareWithDocs(runs);
      for (const problem of problems) console.error(problem);
      console.log(
        problems.length === 0
          ? 'every shown answer is as the service answers now'
          : `${problems.length} steps differ: ${WRITE_COMMAND} writes the new answers`,
      );
      if (problems.length > 0) process.exitCode = 1;
    }
  } finally {
    await stack.stop();
  }
}
