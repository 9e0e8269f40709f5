/**
 * A bounded FIFO ring buffer that grows on demand up to its capacity, so an
 * idle actor's mailbox costs a few bytes, not `capacity` slots.
 */
const EMPTY: Array<never> = []

export class BoundedDeque<A> {
  private buffer: Array<A | undefined> = EMPTY
  private head = 0
  private count = 0

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.count
  }

  isFull(): boolean {
    return this.count >= this.capacity
  }

  /** Appends unless full; returns whether it was appended. */
  push(value: A): boolean {
    if (this.count >= this.capacity) return false
    if (this.count === this.buffer.length) this.grow()
    this.buffer[(this.head + this.count) % this.buffer.length] = value
    this.count++
    return true
  }

  /** Puts `value` back at the head, even past capacity (used once, when a stopped actor gives back its in-flight message). */
  unshift(value: A): void {
    if (this.count === this.buffer.length) this.grow(true)
    this.head = (this.head - 1 + this.buffer.length) % this.buffer.length
    this.buffer[this.head] = value
    this.count++
  }

  shift(): A | undefined {
    if (this.count === 0) return undefined
    const value = this.buffer[this.head]
    this.buffer[this.head] = undefined
    this.head = (this.head + 1) % this.buffer.length
    this.count--
    if (this.count === 0) this.head = 0
    return value
  }

  /** Removes and returns the oldest element matching `predicate`, keeping the order of the rest. */
  removeFirst(predicate: (value: A) => boolean): A | undefined {
    const size = this.buffer.length
    for (let i = 0; i < this.count; i++) {
      const value = this.buffer[(this.head + i) % size] as A
      if (!predicate(value)) continue
      for (let j = i; j < this.count - 1; j++) {
        this.buffer[(this.head + j) % size] = this.buffer[(this.head + j + 1) % size]
      }
      this.buffer[(this.head + this.count - 1) % size] = undefined
      this.count--
      return value
    }
    return undefined
  }

  /** Removes and returns every element, oldest first. */
  drain(): Array<A> {
    const out: Array<A> = []
    while (this.count > 0) out.push(this.shift() as A)
    this.buffer = EMPTY
    return out
  }

  private grow(pastCapacity = false): void {
    const size = this.buffer.length
    const wanted = Math.max(4, size * 2)
    const next = new Array<A | undefined>(pastCapacity ? Math.max(wanted, size + 1) : Math.min(this.capacity, wanted))
    for (let i = 0; i < this.count; i++) next[i] = this.buffer[(this.head + i) % size]
    this.buffer = next
    this.head = 0
  }
}
