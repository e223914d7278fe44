/**
 * The machinery of a configuration written once: each environment variable is a `setting` (its
 * name, its zod schema with default and bounds, what it means), placed in a tree whose shape is
 * the configuration's shape. Parsing the tree gives the configuration, its type is derived from
 * the tree, and the documentation table is rendered from it: nothing is written twice.
 */
import type { z } from 'zod';

export interface Setting<S extends z.ZodType = z.ZodType> {
  readonly kind: 'setting';
  /** The environment variable. */
  readonly env: string;
  readonly schema: S;
  readonly description: string;
  /** What the table shows as the default, where the schema's own would mislead (a built-in secret). */
  readonly shownDefault?: string;
}

type Outputs<S extends Record<string, Setting>> = { readonly [K in keyof S]: z.output<S[K]['schema']> };

/** What a derived setting answers for values that do not go together: the problems, each naming its variables. */
export class Invalid {
  constructor(readonly problems: readonly string[]) {}
}

/** Settings whose values make one value together (`null` for a group left unset, say). */
export interface Derived<S extends Record<string, Setting> = Record<string, Setting>, T = unknown> {
  readonly kind: 'derived';
  readonly settings: S;
  readonly combine: (values: Outputs<S>) => T | Invalid;
}

// biome-ignore lint/suspicious/noExplicitAny: a tree holds derived settings of any shape
type AnyDerived = Derived<any, unknown>;
export type Tree = Setting | AnyDerived | { readonly [key: string]: Tree };

/** The configuration a tree gives. */
export type Output<N> =
  N extends Setting<infer S>
    ? z.output<S>
    : N extends Derived<infer _S, infer T>
      ? T
      : { readonly [K in keyof N]: Output<N[K]> };

export function setting<S extends z.ZodType>(
  env: string,
  schema: S,
  description: string,
  options: { shownDefault?: string } = {},
): Setting<S> {
  return { kind: 'setting', env, schema, description, ...options };
}

export function derived<S extends Record<string, Setting>, T>(
  settings: S,
  combine: (values: Outputs<S>) => T | Invalid,
): Derived<S, T> {
  return { kind: 'derived', settings, combine };
}

function isSetting(node: Tree): node is Setting {
  return (node as { kind?: unknown }).kind === 'setting';
}
function isDerived(node: Tree): node is AnyDerived {
  return (node as { kind?: unknown }).kind === 'derived';
}

/** Every setting of the tree, in order (a derived one's parts in theirs). */
export function settingsOf(tree: object): Setting[] {
  return settingsIn(tree as Tree);
}

function settingsIn(tree: Tree): Setting[] {
  if (isSetting(tree)) return [tree];
  if (isDerived(tree)) return Object.values(tree.settings);
  return Object.values(tree).flatMap(settingsIn);
}

/**
 * The top-level sections of the tree with their settings, for the documentation tables; the
 * settings at the top level itself come first, as the section `general`.
 */
export function sectionsOf(tree: object): Array<{ section: string; settings: Setting[] }> {
  const entries = Object.entries(tree as Record<string, Tree>);
  const general = entries.filter(([, node]) => isSetting(node)).map(([, node]) => node as Setting);
  const sections = entries
    .filter(([, node]) => !isSetting(node))
    .map(([section, node]) => ({ section, settings: settingsIn(node) }));
  return general.length > 0 ? [{ section: 'general', settings: general }, ...sections] : sections;
}

/**
 * Parses `env` (empty values count as unset) through the tree. Returns the configuration, or
 * every problem found, each naming its variable.
 */
export function parseTree<N extends object>(
  tree: N,
  env: Readonly<Record<string, string | undefined>>,
): { ok: true; value: Output<N> } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const value = parseNode(tree as Tree, env, problems);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: value as Output<N> };
}

function parseNode(node: Tree, env: Readonly<Record<string, string | undefined>>, problems: string[]): unknown {
  if (isSetting(node)) return parseSetting(node, env, problems);
  if (isDerived(node)) {
    const values = Object.fromEntries(
      Object.entries(node.settings as Record<string, Setting>).map(([key, s]) => [key, parseSetting(s, env, problems)]),
    ) as Outputs<Record<string, Setting>>;
    if (Object.keys(node.settings).some((key) => values[key] === INVALID)) return INVALID;
    const combined = node.combine(values);
    if (!(combined instanceof Invalid)) return combined;
    problems.push(...combined.problems);
    return INVALID;
  }
  return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, parseNode(child, env, problems)]));
}

const INVALID = Symbol('invalid');

function parseSetting(s: Setting, env: Readonly<Record<string, string | undefined>>, problems: string[]): unknown {
  const raw = env[s.env];
  const result = s.schema.safeParse(raw === '' ? undefined : raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) problems.push(`${s.env}: ${issue.message}`);
  return INVALID;
}

/** The default the table shows: the schema's output for an unset variable. */
export function shownDefault(s: Setting): string {
  if (s.shownDefault !== undefined) return s.shownDefault;
  const result = s.schema.safeParse(undefined);
  if (!result.success || result.data === undefined || result.data === null) return 'unset';
  const value = result.data;
  if (Array.isArray(value)) return value.length === 0 ? 'unset' : `\`${value.join(',')}\``;
  return typeof value === 'string' ? `\`${value}\`` : String(value);
}
