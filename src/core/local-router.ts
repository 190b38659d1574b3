import { LocalHub } from './local-hub.js';
import type { Subscriber } from './local-hub.js';
import type { Router } from './router.js';
import type { Topic } from './topic.js';
import { WatchRegistry } from './watchers.js';
import type { PresenceListener } from './watchers.js';

/** A router for a node without peers: every topic is local. */
export class LocalRouter implements Router {
  readonly hub: LocalHub;
  private readonly watchers = new WatchRegistry();

  constructor(hub: LocalHub = new LocalHub()) {
    this.hub = hub;
    hub.onOwnershipChange((topic, owned) => this.watchers.update(topic, owned));
  }

  subscribe(topic: Topic, sub: Subscriber): void {
    this.hub.add(topic, sub);
  }

  unsubscribe(topic: Topic, sub: Subscriber): void {
    this.hub.remove(topic, sub);
  }

  isSubscribed(topic: Topic, session: string): boolean {
    return this.hub.isSubscribed(topic, session);
  }

  publish(topic: Topic, data: string, exceptSession?: string): Promise<number> {
    return Promise.resolve(this.hub.deliver(topic, data, exceptSession));
  }

  online(topics: readonly Topic[]): Promise<Map<Topic, boolean>> {
    return Promise.resolve(new Map(topics.map((t) => [t, this.hub.owns(t)])));
  }

  watch(topic: Topic, listener: PresenceListener): Promise<boolean> {
    const online = this.hub.owns(topic);
    this.watchers.add(topic, listener, online);
    return Promise.resolve(online);
  }

  unwatch(topic: Topic, listener: PresenceListener): void {
    this.watchers.remove(topic, listener);
  }
}
