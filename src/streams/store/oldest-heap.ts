/**
 * An indexed binary min-heap of streams ordered by their oldest id (ties by stream name), so the
 * store-wide cap finds the globally oldest entry in O(1) and re-positions a stream in O(log streams)
 * after its oldest entry changed, without scanning every stream.
 */

/** What the heap orders: a stream with its oldest id; `heapIndex` is the heap's own bookkeeping. */
export interface HeapItem {
  readonly stream: string;
  oldest: string;
  /** Position in the heap, -1 when not in it. Written only by {@link OldestHeap}. */
  heapIndex: number;
}

/** True when `a` sorts before `b`: by oldest id, then by stream name (a total, deterministic order). */
function before(a: HeapItem, b: HeapItem): boolean {
  return a.oldest < b.oldest || (a.oldest === b.oldest && a.stream < b.stream);
}

/** Min-heap of streams by (oldest id, stream). Synchronous; one owner (a store) at a time. */
export class OldestHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The stream holding the globally oldest entry, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** The stream that would be on top if the top were removed (the smaller child of the root). */
  peekSecond(): T | undefined {
    const a = this.items[1];
    const b = this.items[2];
    if (a === undefined) return b;
    if (b === undefined) return a;
    return before(a, b) ? a : b;
  }

  /** Adds `item`, or re-positions it when already in the heap (after its `oldest` changed). */
  update(item: T): void {
    if (item.heapIndex < 0) {
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
      return;
    }
    this.down(this.up(item.heapIndex));
  }

  /** Removes `item` (no-op when it is not in the heap). */
  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    item.heapIndex = -1;
    const last = this.items.pop()!;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.down(this.up(i));
  }

  private up(i: number): number {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (!before(item, parent)) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = item;
    item.heapIndex = i;
    return i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(items[r]!, items[l]!) ? r : l;
      const child = items[c]!;
      if (!before(child, item)) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
