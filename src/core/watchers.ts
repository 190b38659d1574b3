import type { Topic } from './topic.js';

/** Receives presence transitions of a watched user topic. */
export type PresenceListener = (topic: Topic, online: boolean) => void;

/**
 * Which local listeners watch which topics, and the last status each was told, so a listener hears
 * only real transitions (online -> offline -> online), never a repeat.
 */
export class WatchRegistry {
  private readonly byTopic = new Map<Topic, { online: boolean; listeners: Set<PresenceListener> }>();

  /** Adds a listener with the status it was just answered. Returns true when the topic is newly watched. */
  add(topic: Topic, listener: PresenceListener, online: boolean): boolean {
    let w = this.byTopic.get(topic);
    const fresh = w === undefined;
    if (!w) {
      w = { online, listeners: new Set() };
      this.byTopic.set(topic, w);
    }
    w.listeners.add(listener);
    return fresh;
  }

  /** Removes a listener. Returns true when the topic has no watcher left. */
  remove(topic: Topic, listener: PresenceListener): boolean {
    const w = this.byTopic.get(topic);
    if (!w || !w.listeners.delete(listener)) return false;
    if (w.listeners.size > 0) return false;
    this.byTopic.delete(topic);
    return true;
  }

  /** True when some local listener watches `topic`. */
  has(topic: Topic): boolean {
    return this.byTopic.has(topic);
  }

  /** The last status listeners of `topic` were told, if watched. */
  status(topic: Topic): boolean | undefined {
    return this.byTopic.get(topic)?.online;
  }

  /** Reports the current status of `topic`; listeners are called only when it changed. */
  update(topic: Topic, online: boolean): void {
    const w = this.byTopic.get(topic);
    if (!w || w.online === online) return;
    w.online = online;
    for (const l of [...w.listeners]) l(topic, online);
  }

  /** Every watched topic. */
  topics(): IterableIterator<Topic> {
    return this.byTopic.keys();
  }

  /** Number of watched topics. */
  get size(): number {
    return this.byTopic.size;
  }
}
