import type { Subscriber } from './local-hub.js';
import type { PresenceListener } from './watchers.js';
import type { Topic } from './topic.js';

/** Options of {@link Router.publish}. */
export interface PublishOptions {
  /** The message id, if the frame is a message: a node writes one id to a topic at most once. */
  readonly msg?: string;
  /**
   * Resolve 0 ("nobody got it": offline, no subscribers) only after the topic's home confirmed
   * that nobody holds it; when no firm answer can be had, reject with `unavailable` instead.
   * Default true; false for copies whose count nobody reads (a sender's other devices).
   */
  readonly confirm?: boolean;
}

/**
 * Where the gateway sends everything: subscriptions, publishes, presence. A single node routes
 * locally (`LocalRouter`); the mesh routes to the nodes that own a topic. Every method may be
 * called concurrently; publishes from one caller to one topic keep their call order.
 */
export interface Router {
  /**
   * Subscribes a local connection to a topic. Resolves once the topic's home has recorded this
   * node as an owner, so that from then on every node of the mesh routes to the connection
   * (bounded wait: it also resolves when the home cannot be reached in time). Never rejects.
   */
  subscribe(topic: Topic, sub: Subscriber): Promise<void>;
  /** Unsubscribes it; a no-op when it was not subscribed. */
  unsubscribe(topic: Topic, sub: Subscriber): void;
  /** True when this local connection is subscribed to the topic. */
  isSubscribed(topic: Topic, session: string): boolean;
  /**
   * Delivers the encoded frame `data` to every connection of `topic`, anywhere, except the
   * connection `exceptSession`. Resolves with how many connections it was written to; rejects with
   * a `ChatError` `unavailable` when the topic could not be routed now (then nothing was delivered
   * by the failed part).
   */
  publish(topic: Topic, data: string, exceptSession?: string, options?: PublishOptions): Promise<number>;
  /** Resolves whether each topic has a connection anywhere now. */
  online(topics: readonly Topic[]): Promise<Map<Topic, boolean>>;
  /**
   * Starts calling `listener` on every online/offline transition of `topic`; resolves with the
   * current status, which is what the listener's first transition starts from.
   */
  watch(topic: Topic, listener: PresenceListener): Promise<boolean>;
  /** Stops those calls. */
  unwatch(topic: Topic, listener: PresenceListener): void;
}
