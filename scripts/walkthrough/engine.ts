/**
 * The walkthrough's machinery: runs the steps (steps.ts) in one bash session, as a reader
 * pastes them into a terminal, and renders each with the output it really produced. The
 * rendered sections go into the docs between `<!-- generated: walkthrough-<id> ... -->` markers;
 * `check` holds the docs' shown answers to a new run (see scripts/walkthrough.ts).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Step {
  /** The comment shown above the command (each line becomes a `# ` line). */
  readonly say?: string;
  /** The command as the reader types it: bash, run in one session, so variables carry on. */
  readonly run: string;
  /** What of its output is shown: all of it (the default), the HTTP statuses (`api`'s last lines), none. */
  readonly show?: 'all' | 'status' | 'none';
  /** Of an `api -i` answer's headers, the ones shown (besides the status line). */
  readonly headers?: readonly string[];
  /** A read re-run until its output matches (the state it shows is on its way), within `UNTIL_WAIT_MS`. */
  readonly until?: RegExp;
  /** Lines that come in no fixed order (events of several partitions): compared as a set. */
  readonly anyOrder?: boolean;
  /** A long output shortened to its first `head` lines, `...`, and its last `tail` lines. */
  readonly lines?: { readonly head: number; readonly tail: number };
}

export interface Section {
  /** The marker's name: `walkthrough-<id>`. */
  readonly id: string;
  /** The file holding it, from the repository root. */
  readonly file: string;
  readonly steps: readonly Step[];
}

export interface StepRun {
  readonly step: Step;
  /** What the command printed (standard output and error), trailing newlines removed. */
  readonly output: string;
}

const UNTIL_WAIT_MS = 30_000;
const UNTIL_POLL_MS = 250;
/** One step's longest run: the slowest is a Kafka tool's JVM start plus its wait for a message. */
const STEP_WAIT_MS = 120_000;
/** Output lines are wrapped after a comma to this many characters, for a page that does not scroll. */
export const OUTPUT_WIDTH = 100;
/** The line `api` prints after an answer: its HTTP status. */
const STATUS_LINE = /^\(\d{3}\)$/;
const FIRST = '# -> ';
const NEXT = '#    ';
const WRAPPED = '#      ';

/** One bash process that runs steps in turn; variables and functions persist between them. */
export class Session {
  readonly #bash: ChildProcessWithoutNullStreams;
  #buffer = '';
  #count = 0;

  constructor(env: NodeJS.ProcessEnv, cwd: string) {
    this.#bash = spawn('bash', ['--noprofile', '--norc'], { cwd, env, stdio: 'pipe' });
    this.#bash.stdout.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString();
    });
    this.#bash.stderr.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString();
    });
  }

  /** Runs `command` (standard input from /dev/null unless it pipes its own) and returns its output. */
  async run(command: string): Promise<string> {
    this.#count += 1;
    const marker = `@@walkthrough-step-${this.#count}@@`;
    this.#buffer = '';
    this.#bash.stdin.write(`{\n${command}\n} < /dev/null 2>&1; printf '\\n%s\\n' '${marker}'\n`);
    const deadline = Date.now() + STEP_WAIT_MS;
    while (!this.#buffer.includes(`\n${marker}\n`)) {
      if (Date.now() > deadline) throw new Error(`no end of step within ${STEP_WAIT_MS} ms: ${command}`);
      if (this.#bash.exitCode !== null) throw new Error(`the shell exited (${this.#bash.exitCode}) at: ${command}`);
      await sleep(20);
    }
    return this.#buffer.slice(0, this.#buffer.indexOf(`\n${marker}\n`)).replace(/\n+$/, '');
  }

  /** Runs a step, again and again while it has an `until` its output does not match yet. */
  async runStep(step: Step): Promise<StepRun> {
    const deadline = Date.now() + UNTIL_WAIT_MS;
    for (;;) {
      const output = await this.run(step.run);
      if (!step.until || step.until.test(output)) return { step, output };
      if (Date.now() > deadline)
        throw new Error(`step never printed ${step.until} within ${UNTIL_WAIT_MS} ms: ${step.run}\n${output}`);
      await sleep(UNTIL_POLL_MS);
    }
  }

  close(): void {
    this.#bash.stdin.end();
    this.#bash.kill('SIGTERM');
  }
}

/** The output lines a step shows: headers cut to the named ones, long outputs shortened. */
export function shownLines(step: Step, output: string): string[] {
  if (step.show === 'none' || output === '') return [];
  // CSV and HTTP headers end their lines with CR LF; a terminal shows no difference.
  let lines = output.split('\n').map((line) => line.replace(/\r$/, ''));
  if (step.show === 'status') lines = lines.filter((line) => STATUS_LINE.test(line));
  if (step.headers) lines = keepHeaders(lines, step.headers);
  const cut = step.lines;
  if (cut && lines.length > cut.head + cut.tail + 1)
    lines = [...lines.slice(0, cut.head), '...', ...lines.slice(-cut.tail)];
  return lines;
}

/** An `-i` answer: its status line, the named headers, the blank line and the body. */
function keepHeaders(lines: readonly string[], names: readonly string[]): string[] {
  const blank = lines.indexOf('');
  const headers = lines.slice(0, blank);
  const kept = headers.filter((line, i) => i === 0 || names.includes(line.split(':')[0]!.toLowerCase()));
  return [...kept, ...lines.slice(blank + 1)];
}

/** A long line cut after commas into pieces of at most `width` characters (a piece may be longer). */
export function wrap(line: string, width = OUTPUT_WIDTH): string[] {
  const pieces = line.split(/(?<=,)/);
  const out: string[] = [];
  let current = '';
  for (const piece of pieces) {
    if (current !== '' && current.length + piece.length > width) {
      out.push(current);
      current = piece;
    } else current += piece;
  }
  out.push(current);
  return out;
}

/** A step as the docs show it: the comment, the command, then its output as `# -> ` lines. */
export function renderStep(run: StepRun): string {
  const said = run.step.say ? run.step.say.split('\n').map((line) => `# ${line}`) : [];
  const shown = shownLines(run.step, run.output).flatMap((line, i) =>
    wrap(line).map((piece, j) => ((j > 0 ? WRAPPED : i === 0 ? FIRST : NEXT) + piece).trimEnd()),
  );
  return [...said, run.step.run, ...shown].join('\n');
}

/** A section's text between its markers: one shell block of its steps, a blank line apart. */
export function renderSection(runs: readonly StepRun[]): string {
  return ['```sh', runs.map(renderStep).join('\n\n'), '```'].join('\n');
}

/** The steps of a rendered section, parsed back: each one's command and shown output lines. */
export function parseSection(text: string): Array<{ run: string; shown: string[] }> {
  const body = text.replace(/^```sh\n/, '').replace(/\n```\s*$/, '');
  return body.split('\n\n').map((block) => {
    const lines = block.split('\n').filter((line) => !line.startsWith('# ') || line.startsWith(FIRST));
    const first = lines.findIndex((line) => line.startsWith(FIRST));
    const commandLines = first < 0 ? lines : lines.slice(0, first);
    const outputLines = first < 0 ? [] : block.split('\n').slice(block.split('\n').indexOf(lines[first]!));
    const shown: string[] = [];
    for (const line of outputLines) {
      if (line.startsWith(WRAPPED)) shown[shown.length - 1] += line.slice(WRAPPED.length);
      else shown.push(line.slice(FIRST.length));
    }
    return { run: commandLines.join('\n'), shown };
  });
}

/**
 * What may differ between two runs of the same walkthrough on fresh databases: instants, dates,
 * random ids, cursors, opaque references, hashes, signatures, tokens. Everything else must be the same.
 */
export function normalise(line: string): string {
  return line
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?/g, '<instant>')
    .replace(/\b\d{4}-\d{2}(-\d{2})?\b/g, '<date>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/"(next_cursor|fingerprint|signature)":"[^"]*"/g, '"$1":"<opaque>"')
    .replace(/~other:[A-Za-z0-9_-]+/g, '~other:<ref>')
    .replace(/\b[0-9a-f]{64}\b/g, '<hash>')
    .replace(/\beyJ[A-Za-z0-9_.-]+/g, '<jwt>');
}

/** How a step's shown output differs from a new run's, or null when it does not. */
export function difference(step: Step, shown: readonly string[], actual: readonly string[]): string | null {
  const normal = (lines: readonly string[]) => {
    const out = lines.map(normalise);
    return step.anyOrder ? out.sort() : out;
  };
  const a = normal(shown);
  const b = normal(actual);
  const at = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i).find((i) => a[i] !== b[i]);
  if (at === undefined) return null;
  return `line ${at + 1}:\n  shown: ${a[at] ?? '(none)'}\n  now:   ${b[at] ?? '(none)'}`;
}
