/**
 * A partition assigner for a consumer that is the only member of its group and wants one
 * partition of one topic: the partition its reply key maps to. The reply listener uses it so that
 * a gateway fetches only the partition its replies are keyed to, not every reply partition.
 *
 * The partition is worked out when the group is (re)assigned, from the partition count the
 * cluster reports then, with the same murmur2 mapping the consumer's producer uses for the key.
 * kafkajs has no manual `assign()`, so this is how a kafkajs consumer reads one partition.
 */
import kafkajs from 'kafkajs';
import { partitionOfKey } from './partition.ts';

const { AssignerProtocol } = kafkajs;
const NO_USER_DATA = Buffer.alloc(0);

/**
 * An assigner that gives every partition `key` maps to (one) to the group's first member, and
 * nothing to any other: the group is meant to have one member, and this keeps a second one (the
 * same group id used twice) from splitting the topic between them.
 */
export function routeAssigner(topic: string, key: string): kafkajs.PartitionAssigner {
  return ({ cluster }) => ({
    name: 'BalanceReplyRouteAssigner',
    version: 0,
    async assign({ members }) {
      const partitions = cluster.findTopicPartitionMetadata(topic).length;
      if (partitions === 0 || members.length === 0) return [];
      const partition = partitionOfKey(key, partitions);
      const [first, ...others] = members.map((m) => m.memberId).sort();
      return [
        {
          memberId: first!,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 0,
            assignment: { [topic]: [partition] },
            userData: NO_USER_DATA,
          }),
        },
        ...others.map((memberId) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 0,
            assignment: {},
            userData: NO_USER_DATA,
          }),
        })),
      ];
    },
    protocol({ topics }) {
      return {
        name: 'BalanceReplyRouteAssigner',
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: NO_USER_DATA }),
      };
    },
  });
}
