/**
 * The registry of kinds and activations, message routing, passivation,
 * housekeeping and shutdown.
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, FiberId, ParseResult } from "effect"
import type { Schema } from "effect"
import type { ActorDefinition, ActorRef, Build, Message, Options } from "../Actor.ts"
import { ActorAddress, format } from "../ActorAddress.ts"
import {
  ActorAlreadyExists,
  ActorNotFound,
  AskTimeout,
  InvalidMessage,
  SystemStopping,
  type AskError,
  type TellError
} from "../ActorError.ts"
import * as Termination from "../Termination.ts"
import { AskTimers, type PendingAsk } from "./askTimers.ts"
import { Cell, type Envelope } from "./cell.ts"
import { KindEntry } from "./kind.ts"
import type { Runtime } from "effect"

/** A message that reached no handler. */
export interface DeadLetter {
  readonly address: string
  readonly message: Message
  /** `dropped` (mailbox overflow) or the termination reason label of the actor it was queued for. */
  readonly reason: string
}

export interface SystemConfig {
  readonly name: string
  readonly askTimeout: Duration.Duration
  readonly shutdownDeadline: Duration.Duration
  readonly housekeepingInterval: Duration.Duration
  readonly onDeadLetter: ((letter: DeadLetter) => void) | undefined
}

export interface KindStats {
  readonly kind: string
  readonly alive: number
  readonly mailboxDepth: number
}

const MIN_TICK_MILLIS = 5

export class SystemImpl {
  readonly kinds = new Map<string, KindEntry>()
  readonly askTimers = new AskTimers()
  private stopping = false
  private readonly shutdownDone: Deferred.Deferred<void> = Deferred.unsafeMake(FiberId.none)

  constructor(readonly config: SystemConfig) {}

  get isStopping(): boolean {
    return this.stopping
  }

  register(
    definition: ActorDefinition<string, Message>,
    build: Build<Message, never>,
    runtime: Runtime.Runtime<never>,
    options: Options<Message>
  ): KindEntry {
    if (this.kinds.has(definition.kind)) throw new Error(`actor kind ${definition.kind} is already registered`)
    const entry = new KindEntry(this, definition, build, runtime, options)
    this.kinds.set(definition.kind, entry)
    return entry
  }

  /** A handle on an address; it resolves the live activation on each send. */
  ref<M extends Message>(definition: ActorDefinition<string, M>, key: string): ActorRef<M> {
    return new RefImpl<M>(this, definition, key) as ActorRef<M>
  }

  /** Routes an envelope; activates on demand where the kind allows it. */
  send<M extends Message>(definition: ActorDefinition<string, M>, key: string, envelope: Envelope, cached: Cell | undefined): Cell | TellError {
    if (!definition.is(envelope.message)) return invalid(definition, key, envelope.message)
    let cell = cached
    if (cell === undefined || !cell.registered) {
      const entry = this.kinds.get(definition.kind)
      if (entry === undefined) return new ActorNotFound({ address: format(definition.kind, key) })
      cell = entry.cells.get(key)
      if (cell === undefined) {
        if (!entry.activateOnMessage) return new ActorNotFound({ address: format(definition.kind, key) })
        if (this.stopping || entry.closing) return new SystemStopping()
        cell = this.activate(entry, key, undefined)
      }
    }
    const error = cell.enqueue(envelope)
    return error === undefined ? cell : error
  }

  /** Tells from inside the runtime (watch notices); failures become dead letters. */
  tellSync(entry: KindEntry, key: string, message: Message): void {
    const result = this.send(entry.definition, key, { message, reply: undefined }, undefined)
    if (!(result instanceof Cell)) {
      entry.metrics.deadLetter(result._tag)
      this.config.onDeadLetter?.({ address: format(entry.name, key), message, reason: result._tag })
    }
  }

  private activate(entry: KindEntry, key: string, parent: Cell | undefined): Cell {
    const cell = new Cell(entry, key, format(entry.name, key), parent, entry.terminating.get(key))
    entry.cells.set(key, cell)
    if (parent !== undefined) (parent.children ??= new Set()).add(cell)
    entry.start(cell)
    return cell
  }

  spawn<M extends Message>(
    definition: ActorDefinition<string, M>,
    key: string,
    parent: Cell | undefined
  ): Effect.Effect<ActorRef<M>, ActorAlreadyExists | ActorNotFound | SystemStopping> {
    return Effect.suspend((): Effect.Effect<ActorRef<M>, ActorAlreadyExists | ActorNotFound | SystemStopping> => {
      const address = format(definition.kind, key)
      if (this.stopping) return Effect.fail(new SystemStopping())
      const entry = this.kinds.get(definition.kind)
      if (entry === undefined) return Effect.fail(new ActorNotFound({ address }))
      if (entry.closing) return Effect.fail(new SystemStopping())
      if (entry.cells.has(key)) return Effect.fail(new ActorAlreadyExists({ address }))
      if (parent !== undefined && (parent.state === "stopping" || parent.state === "stopped")) {
        return Effect.fail(new SystemStopping())
      }
      const ref = this.ref(definition, key)
      // The actor's own `ctx.self` is the ref handed to the spawner: one object per actor, not two.
      // (Cells are untyped; `Build` gives `ctx.self` its message type back.)
      this.activate(entry, key, parent).self = ref as unknown as ActorRef<Message>
      return Effect.succeed(ref)
    })
  }

  /** Stops `cell` after its current message: from now on its address routes to a new activation. */
  requestTerminate(cell: Cell, reason: Termination.TerminationReason = new Termination.Stopped()): void {
    if (cell.state === "stopped") return
    this.unregister(cell)
    cell.setSignal({ _tag: "Terminate", reason })
  }

  unregister(cell: Cell): void {
    if (!cell.registered) return
    cell.registered = false
    const entry = cell.kind
    if (entry.cells.get(cell.key) === cell) entry.cells.delete(cell.key)
    if (cell.state !== "stopped") entry.terminating.set(cell.key, cell)
  }

  /** Called once a cell has finished terminating. */
  released(cell: Cell): void {
    const entry = cell.kind
    if (entry.terminating.get(cell.key) === cell) entry.terminating.delete(cell.key)
  }

  deadLetter(cell: Cell, message: Message, reason: string): void {
    cell.kind.metrics.deadLetter(reason)
    this.config.onDeadLetter?.({ address: cell.address, message, reason })
  }

  lookup(address: ActorAddress): Cell | undefined {
    return this.kinds.get(address.kind)?.cells.get(address.key)
  }

  /** The live activation at `address`, or else the one still terminating there. */
  private current(address: ActorAddress): Cell | undefined {
    const entry = this.kinds.get(address.kind)
    return entry?.cells.get(address.key) ?? entry?.terminating.get(address.key)
  }

  watch(watcher: Cell, target: ActorAddress, onTerminated: (notice: Termination.Terminated) => void): void {
    const cell = this.current(target)
    if (cell === undefined || cell.state === "stopped") {
      onTerminated(new Termination.Terminated({ address: target.toString(), reason: new Termination.NotRunning() }))
      return
    }
    ;(cell.watchers ??= new Map()).set(watcher, onTerminated)
    ;(watcher.watching ??= new Set()).add(cell)
  }

  unwatch(watcher: Cell, target: ActorAddress): void {
    const cell = this.current(target)
    if (cell === undefined) return
    cell.watchers?.delete(watcher)
    watcher.watching?.delete(cell)
  }

  /** Completes with the reason the current activation at `address` terminates (`NotRunning` if none). */
  awaitTermination(address: ActorAddress): Effect.Effect<Termination.TerminationReason> {
    return Effect.suspend(() => {
      const cell = this.current(address)
      return cell === undefined ? Effect.succeed(new Termination.NotRunning()) : cell.done
    })
  }

  stop(address: ActorAddress): Effect.Effect<void> {
    return Effect.suspend(() => {
      const cell = this.current(address)
      if (cell === undefined) return Effect.void
      this.requestTerminate(cell)
      return cell.done
    })
  }

  stats(): ReadonlyArray<KindStats> {
    const out: Array<KindStats> = []
    for (const entry of this.kinds.values()) {
      let depth = 0
      for (const cell of entry.cells.values()) depth += cell.mailbox.length
      out.push({ kind: entry.name, alive: entry.metrics.aliveCount, mailboxDepth: depth })
    }
    return out
  }

  /** The housekeeping tick: often enough for the shortest passivation timeout. */
  private tickMillis(): number {
    let tick = Duration.toMillis(this.config.housekeepingInterval)
    for (const entry of this.kinds.values()) {
      if (entry.passivateMillis !== undefined) tick = Math.min(tick, entry.passivateMillis / 4)
    }
    return Math.max(MIN_TICK_MILLIS, tick)
  }

  /** Passivates idle activations and samples mailbox depths, forever. */
  housekeeping(): Effect.Effect<never> {
    return Effect.suspend(() => Effect.sleep(Duration.millis(this.tickMillis()))).pipe(
      Effect.zipRight(Clock.currentTimeMillis),
      Effect.tap((now) => Effect.sync(() => this.sweep(now))),
      Effect.forever
    )
  }

  sweep(now: number): void {
    for (const entry of this.kinds.values()) {
      const idleMillis = entry.passivateMillis
      let depth = 0
      for (const cell of entry.cells.values()) {
        depth += cell.mailbox.length
        if (idleMillis === undefined || this.stopping) continue
        if (cell.activity !== cell.seenActivity) {
          cell.seenActivity = cell.activity
          cell.idleSince = now
          continue
        }
        if (
          cell.state === "running" && !cell.busy && cell.mailbox.length === 0 &&
          (cell.children === undefined || cell.children.size === 0) && now - cell.idleSince >= idleMillis
        ) {
          this.requestTerminate(cell, new Termination.Passivated())
        }
      }
      entry.metrics.mailboxDepth(depth)
    }
  }

  /** Drains every kind whose name is in `kinds` (all when omitted), then interrupts what is left at the deadline. */
  drain(kinds?: ReadonlySet<string>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const cells: Array<Cell> = []
      for (const entry of this.kinds.values()) {
        if (kinds !== undefined && !kinds.has(entry.name)) continue
        for (const cell of entry.cells.values()) cells.push(cell)
        for (const cell of entry.terminating.values()) cells.push(cell)
      }
      for (const cell of cells) cell.setSignal({ _tag: "Drain" })
      const all = Effect.forEach(cells, (cell) => cell.done, { discard: true })
      return all.pipe(
        Effect.timeout(this.config.shutdownDeadline),
        Effect.catchTag("TimeoutException", () => {
          const left = cells.filter((cell) => cell.state !== "stopped")
          return Effect.logWarning(`actor drain passed its deadline; interrupting ${left.length} actors`).pipe(
            Effect.zipRight(Fiber.interruptAll(left.flatMap((cell) => cell.fiber === undefined ? [] : [cell.fiber]))),
            Effect.zipRight(Effect.forEach(left, (cell) => cell.abandon(), { discard: true }))
          )
        })
      )
    })
  }

  /**
   * Takes a kind out of the system (its layer is being released): no new
   * activations (`SystemStopping`) while its actors drain, then the kind is
   * gone (`ActorNotFound`).
   */
  releaseKind(kind: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const entry = this.kinds.get(kind)
      if (entry === undefined) return Effect.void
      entry.closing = true
      return this.drain(new Set([kind])).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (this.kinds.get(kind) === entry) this.kinds.delete(kind)
        }))
      )
    })
  }

  /** Stops accepting activations, drains every actor within the deadline, runs stop hooks. Idempotent. */
  shutdown(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.stopping) return Deferred.await(this.shutdownDone)
      this.stopping = true
      return this.drain().pipe(Effect.ensuring(Deferred.done(this.shutdownDone, Exit.void)))
    })
  }
}

const invalid = <M extends Message>(definition: ActorDefinition<string, M>, key: string, message: unknown): InvalidMessage =>
  new InvalidMessage({
    address: format(definition.kind, key),
    detail: ParseResult.validateEither(definition.schema)(message).pipe(
      (result) => result._tag === "Left" ? ParseResult.TreeFormatter.formatIssueSync(result.left) : "not a message of this kind"
    )
  })

/**
 * The `ActorRef` implementation: caches the activation it last reached. Its
 * operations are prototype methods, so a ref costs one small object.
 */
class RefImpl<M extends Message> implements ActorRef<M> {
  readonly address: ActorAddress
  private cell: Cell | undefined = undefined

  constructor(
    private readonly system: SystemImpl,
    private readonly definition: ActorDefinition<string, M>,
    private readonly key: string
  ) {
    // The kind was checked by `Actor.make`; any string is a valid key.
    this.address = new ActorAddress({ kind: definition.kind, key }, true)
  }

  private deliver(envelope: Envelope): TellError | undefined {
    const result = this.system.send(this.definition, this.key, envelope, this.cell)
    if (result instanceof Cell) {
      this.cell = result
      return undefined
    }
    return result
  }

  tell(message: M): Effect.Effect<void, TellError> {
    return Effect.suspend(() => {
      const error = this.deliver({ message, reply: undefined })
      return error === undefined ? Effect.void : Effect.fail(error)
    })
  }

  // The handler's type (see `Handlers`) guarantees the reply matches the message's declared
  // result, so the untyped reply channel is narrowed to `ActorRef.ask`'s signature here.
  ask<A extends M>(
    message: A,
    options?: { readonly timeout?: Duration.DurationInput }
  ): Effect.Effect<Schema.WithResult.Success<A>, Schema.WithResult.Failure<A> | AskError> {
    const timeout = options?.timeout === undefined ? this.system.config.askTimeout : Duration.decode(options.timeout)
    const timeoutMillis = Duration.toMillis(timeout)
    const timers = this.system.askTimers
    const reply = Effect.clockWith((clock) =>
      Effect.async<unknown, unknown>((resume) => {
        const pending: PendingAsk = {
          deadline: clock.unsafeCurrentTimeMillis() + timeoutMillis,
          expire: () => resume(Effect.fail(new AskTimeout({ address: this.address.toString(), timeoutMillis })))
        }
        const error = this.deliver({
          message,
          reply: (exit) => {
            timers.remove(pending)
            resume(exit)
          }
        })
        if (error !== undefined) return resume(Effect.fail(error))
        timers.add(pending)
        return Effect.sync(() => timers.remove(pending))
      })
    )
    return reply as Effect.Effect<Schema.WithResult.Success<A>, Schema.WithResult.Failure<A> | AskError>
  }

  get stop(): Effect.Effect<void> {
    return this.system.stop(this.address)
  }
}
