/**
 * Topics: the one routing abstraction. A user is `u:<user>`, a room is `r:<room>`. A connection
 * subscribes to its user topic at welcome and to a room topic at join; a user is online when its
 * topic has an owner anywhere.
 */

/** A topic name: `u:<user>` or `r:<room>`. */
export type Topic = string;

/** The topic of a user. */
export function userTopic(user: string): Topic {
  return `u:${user}`;
}

/** The topic of a room. */
export function roomTopic(room: string): Topic {
  return `r:${room}`;
}

/** The user or room name inside a topic. */
export function topicName(topic: Topic): string {
  return topic.slice(2);
}
