/**
 * Where a command may ask for its reply (`reply_to`). A producer-controlled topic name must not
 * let a command write into the command topic, the dead-letter topic or Kafka's internal topics,
 * nor make the consumer wait on topics that do not exist: replies go only to the default reply
 * topic or to topics under a configured prefix.
 */
export interface ReplyTopicPolicy {
  /** Where replies go when a command names no `reply_to`, or a refused one. */
  readonly defaultTopic: string;
  /** Topics starting with this may be named in `reply_to`. */
  readonly prefix: string;
  /** Never allowed, whatever the prefix says: the command and dead-letter topics. */
  readonly forbidden: readonly string[];
}

export const KAFKA_TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;

/** Why `topic` may not receive replies, or null when it may. */
export function replyTopicProblem(topic: string, policy: ReplyTopicPolicy): string | null {
  if (!KAFKA_TOPIC_PATTERN.test(topic)) return 'must be a Kafka topic name';
  if (topic.startsWith('__')) return 'must not be an internal topic';
  if (policy.forbidden.includes(topic)) return 'must not be the command, dead-letter or events topic';
  if (topic === policy.defaultTopic || (topic.startsWith(policy.prefix) && topic.length > policy.prefix.length))
    return null;
  return `must be ${policy.defaultTopic} or start with ${policy.prefix}`;
}

export function replyTopicPolicyOf(topics: {
  commands: string;
  replies: string;
  deadLetters: string;
  events: string;
  replyPrefix: string;
}): ReplyTopicPolicy {
  return {
    defaultTopic: topics.replies,
    prefix: topics.replyPrefix,
    forbidden: [topics.commands, topics.deadLetters, topics.events],
  };
}

/** The policy of the default configuration (a config test keeps the two in step). */
export const DEFAULT_REPLY_TOPIC_POLICY: ReplyTopicPolicy = {
  defaultTopic: 'balance.replies',
  prefix: 'balance.replies.',
  forbidden: ['balance.commands', 'balance.commands.dlq', 'balance.events'],
};

/**
 * The Kafka header with which a waiting client asks for its reply to be keyed, so that it lands
 * on one reply partition that the client alone reads (its "reply route"): a gateway then fetches
 * one partition, and a chunk's replies for it make one produce request to one partition. Without
 * the header (or with one that breaks the pattern) a reply is keyed by its command id, as before.
 * The header only chooses a partition of the reply topic, never a topic, and never a decision.
 */
export const REPLY_KEY_HEADER = 'balance-reply-key';
export const REPLY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** The reply key a message asks for, or null when it asks for none or for one that is not allowed. */
export function replyKeyOf(header: string | Buffer | null | undefined): string | null {
  // Kafka headers may carry a null value (kafkajs decodes it as null): anything but text or bytes is no key.
  let key: string;
  if (typeof header === 'string') key = header;
  else if (Buffer.isBuffer(header) && header.length <= 64) key = header.toString('latin1');
  else return null;
  return REPLY_KEY_PATTERN.test(key) ? key : null;
}
