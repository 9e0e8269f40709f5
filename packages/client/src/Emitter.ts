/**
 * A small typed event emitter. A listener that throws does not stop the
 * others: the error goes to `onListenerError` (the client turns it into an
 * `error` event; an `error` listener that throws is ignored, so nothing loops).
 */

export type Listener<E> = (event: E) => void

export class Emitter<Events extends object> {
  private listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {}

  constructor(private readonly onListenerError: (type: keyof Events, error: unknown) => void) {}

  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const set = this.listeners[type] ?? new Set<Listener<Events[K]>>()
    this.listeners[type] = set
    set.add(listener)
    return () => this.off(type, listener)
  }

  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    this.listeners[type]?.delete(listener)
  }

  count(type: keyof Events): number {
    return this.listeners[type]?.size ?? 0
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.listeners[type]
    if (set === undefined) return
    // A copy: a listener may remove itself (or others) while we iterate.
    for (const listener of Array.from(set)) {
      try {
        listener(event)
      } catch (error) {
        this.onListenerError(type, error)
      }
    }
  }

  clear(): void {
    this.listeners = {}
  }
}
