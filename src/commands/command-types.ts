/**
 * The lists of command types every part of the service uses, derived from the catalog
 * (catalog.ts), in its order: nothing here is written by hand.
 */
import { COMMAND_CATALOG } from './catalog.ts';
import type { CommandSpec } from './catalog-spec.ts';

export type CommandType = keyof typeof COMMAND_CATALOG;
export const COMMAND_TYPES = Object.keys(COMMAND_CATALOG) as CommandType[];
/** The commands clients send (HTTP or Kafka); settles and expires are the consumer's own. */
export type ClientCommandType = {
  [K in CommandType]: (typeof COMMAND_CATALOG)[K]['origin'] extends 'client' ? K : never;
}[CommandType];
export const CLIENT_COMMAND_TYPES = COMMAND_TYPES.filter(
  (type) => COMMAND_CATALOG[type].origin === 'client',
) as ClientCommandType[];
/** The money commands USER_ACTIONS may grant a user on their own account. */
export type GrantableCommandType = {
  [K in ClientCommandType]: (typeof COMMAND_CATALOG)[K]['access']['user'] extends 'grantable' ? K : never;
}[ClientCommandType];
export const GRANTABLE_COMMAND_TYPES = CLIENT_COMMAND_TYPES.filter(
  (type) => specOf(type).access?.user === 'grantable',
) as [GrantableCommandType, ...GrantableCommandType[]];

/** The balance events, in catalog order; each applied command of a type with one makes it. */
export type EventType = Exclude<(typeof COMMAND_CATALOG)[CommandType]['eventType'], null>;
export const EVENT_TYPES = [
  ...new Set(COMMAND_TYPES.map((type) => COMMAND_CATALOG[type].eventType).filter((t) => t !== null)),
] as [EventType, ...EventType[]];

export function specOf(type: CommandType): CommandSpec {
  return COMMAND_CATALOG[type];
}

/** The types for which `has` holds, in catalog order. */
export function typesWhere(has: (spec: CommandSpec) => boolean): CommandType[] {
  return COMMAND_TYPES.filter((type) => has(COMMAND_CATALOG[type]));
}
