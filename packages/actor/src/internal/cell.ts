/**
 * One actor: its mailbox, its fiber and the state machine that runs it
 * (activate, handle messages, supervise crashes, terminate).
 *
 * Everything that touches the mailbox, the registry entry or the state flags
 * is synchronous, so on a single JavaScript thread no message can slip in
 * between a check and the state change it guards (passivation, stop).
 *
 * An actor runs as an Effect fiber while it has work: the fiber is forked
 * when a message or signal arrives for an idle actor, and it ends once the
 * mailbox stays empty across one yield. An idle actor is therefore only its
 * state (a few hundred bytes), which is what lets a node hold hundreds of
 * thousands of rooms, users and connections. Build, hooks, handlers and the
 * activation scope belong to the activation, not to any one fiber.
 *
 * The per-message path and the per-actor footprint are kept lean on purpose:
 * no generators on the hot path, a handful of closures per actor (allocated
 * once), prototype methods for everything else.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, FiberId, Random, Scope } from "effect"
import type { Fiber } from "effect"
import type { ActorContext, ActorRef, Behavior, Message } from "../Actor.ts"
import { ActorCrashed, ActorStopped, MailboxFull } from "../ActorError.ts"
import * as Supervision from "../Supervision.ts"
import * as Termination from "../Termination.ts"
import { ActivationScope } from "./activationScope.ts"
import { BoundedDeque } from "./deque.ts"
import type { KindEntry } from "./kind.ts"

/** A queued message and, for an ask, where its reply goes. */
export interface Envelope {
  readonly message: Message
  readonly reply: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined
}

/** A control request, checked before each message. */
export type Signal =
  | { readonly _tag: "Terminate"; readonly reason: Termination.TerminationReason }
  | { readonly _tag: "Drain" }
  | { readonly _tag: "ChildFailed"; readonly cause: Cause.Cause<unknown> }

type Outcome =
  | { readonly _tag: "Signal"; readonly signal: Signal }
  | { readonly _tag: "Crash"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "Idle" }

type Decision =
  | { readonly _tag: "Restart"; readonly delayMillis: number }
  | { readonly _tag: "Terminate"; readonly reason: Termination.TerminationReason; readonly escalate: boolean }

export type CellState = "starting" | "running" | "restarting" | "stopping" | "stopped"

type Handler = (message: Message) => Effect.Effect<unknown, unknown>

const DEFECT_TEXT_LIMIT = 2000

export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const text = Cause.pretty(cause)
  return text.length > DEFECT_TEXT_LIMIT ? `${text.slice(0, DEFECT_TEXT_LIMIT)}...` : text
}

/** A typed failure declared by the message (a reply), as opposed to a defect or an interruption (a crash). */
const isReplyFailure = (cause: Cause.Cause<unknown>): boolean =>
  Cause.isFailure(cause) && !Cause.isDie(cause) && !Cause.isInterrupted(cause)

const crash = (cause: Cause.Cause<unknown>): Effect.Effect<Outcome> => Effect.succeed({ _tag: "Crash", cause })
const idle: Effect.Effect<Outcome> = Effect.succeed({ _tag: "Idle" })

const shutdownReason = new Termination.Shutdown()
const parentStopped = new Termination.ParentStopped()

export class Cell {
  readonly mailbox: BoundedDeque<Envelope>
  /** Made on first use: most actors are never awaited. */
  private doneDeferred: Deferred.Deferred<Termination.TerminationReason> | undefined = undefined
  private finalReason: Termination.TerminationReason | undefined = undefined
  state: CellState = "starting"
  /** Whether the registry still routes new messages to this cell. */
  registered = true
  signal: Signal | undefined = undefined
  /** The fiber running this actor now; `undefined` while the actor is idle. */
  fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  busy = false
  /** Bumped on every enqueue and every handled message; the passivation sweep compares it. */
  activity = 0
  seenActivity = -1
  idleSince = 0
  restarts = 0
  children: Set<Cell> | undefined = undefined
  watchers: Map<Cell | symbol, (notice: Termination.Terminated) => void> | undefined = undefined
  /** Targets this cell watches, so the watches are removed when it terminates. */
  watching: Set<Cell> | undefined = undefined
  private behavior: Behavior<Message, never> | undefined = undefined
  private receive: Record<string, Handler> | undefined = undefined
  /** A ref to this actor, when one exists already (the spawner's): reused as `ctx.self`. */
  self: ActorRef<Message> | undefined = undefined
  /** The current activation's scope; handlers reach it through `ActivationScope`. */
  activationScope: Scope.CloseableScope | undefined = undefined
  /** The `Scope` service in this actor's fibers' context. */
  readonly scopeService: ActivationScope = new ActivationScope(this)
  private context: ActorContext<Message> | undefined = undefined
  private current: Envelope | undefined = undefined
  private restartTimes: Array<number> | undefined = undefined
  private stoppingHookRan = false
  /** Whether the running instance has started (built and hooks run): a new fiber resumes its loop. */
  private instanceRunning = false
  private lingered = false
  /** Set while a restart backs off: a stop or drain ends the wait. */
  private interruptBackoff: (() => void) | undefined = undefined
  private handledSinceIdle = false

  // The hot loop, allocated once per actor.
  private readonly loop: Effect.Effect<Outcome> = Effect.suspend(() => this.step())
  private readonly lingerThenLoop: Effect.Effect<Outcome> = Effect.zipRight(Effect.yieldNow(), this.loop)
  private readonly afterMessage = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<Outcome> => this.handled(exit)

  constructor(
    readonly kind: KindEntry,
    readonly key: string,
    readonly address: string,
    readonly parent: Cell | undefined,
    private readonly predecessor: Cell | undefined
  ) {
    this.mailbox = new BoundedDeque(kind.mailbox.capacity)
  }

  /** Enqueues a message, applying the overflow policy; returns the error for the sender, if any. */
  enqueue(envelope: Envelope): MailboxFull | undefined {
    const mailbox = this.mailbox
    if (mailbox.isFull()) {
      const policy = this.kind.mailbox.overflow
      if (policy === "dropOldest") {
        const droppable = this.kind.droppable
        const dropped = mailbox.removeFirst((queued) => queued.reply === undefined && droppable(queued.message))
        if (dropped === undefined) return this.kind.mailboxFull(this.address)
        this.kind.system.deadLetter(this, dropped.message, "dropped")
      } else {
        if (policy === "stop") {
          this.kind.system.requestTerminate(this, new Termination.MailboxOverflow({ capacity: mailbox.capacity }))
        }
        return this.kind.mailboxFull(this.address)
      }
    }
    mailbox.push(envelope)
    this.activity++
    this.notify()
    return undefined
  }

  /** Sets a control signal; a terminate request is never downgraded. */
  setSignal(signal: Signal): void {
    const current = this.signal
    if (current !== undefined && current._tag === "Terminate") return
    if (current !== undefined && current._tag === "Drain" && signal._tag === "ChildFailed") return
    this.signal = signal
    const interruptBackoff = this.interruptBackoff
    if (interruptBackoff !== undefined && signal._tag !== "ChildFailed") {
      this.interruptBackoff = undefined
      interruptBackoff()
    }
    this.notify()
  }

  /** Completes with the reason once this activation has terminated. */
  get done(): Effect.Effect<Termination.TerminationReason> {
    if (this.finalReason !== undefined) return Effect.succeed(this.finalReason)
    this.doneDeferred ??= Deferred.unsafeMake(FiberId.none)
    return Deferred.await(this.doneDeferred)
  }

  /** Makes sure a fiber is running this actor (there is work: a message or a signal). */
  notify(): void {
    if (this.fiber === undefined && this.state !== "stopped") this.kind.fork(this)
  }

  /**
   * What a newly forked fiber does: the first activation, or the running
   * instance's loop after an idle period, and whatever follows. Never fails.
   */
  run(): Effect.Effect<void> {
    const work = this.instanceRunning
      ? Effect.flatMap(this.loop, (outcome) => this.afterInstance(outcome))
      : this.predecessor === undefined
      ? this.activate(undefined)
      : Effect.zipRight(this.predecessor.done, this.activate(undefined))
    return Effect.catchAllCause(work, (cause) =>
      Effect.zipRight(
        Effect.logError(`actor ${this.address} failed outside its handlers`, cause),
        this.terminate(new Termination.Crashed({ defect: describeCause(cause) }))
      ))
  }

  /** After its fiber was interrupted (shutdown deadline): close the scope and finish. */
  abandon(): Effect.Effect<void> {
    return Effect.ensuring(
      Effect.suspend(() => this.closeScope(Exit.interrupt(FiberId.none))),
      Effect.sync(() => this.finalize(shutdownReason))
    )
  }

  /** One instance: build it, run its hooks and its message loop, then decide what follows. */
  private activate(lastCrash: Cause.Cause<unknown> | undefined): Effect.Effect<void> {
    return Effect.flatMap(
      Effect.flatMap(Scope.make(), (scope) => this.startInstance(scope, lastCrash)),
      (outcome) => this.afterInstance(outcome)
    )
  }

  private startInstance(scope: Scope.CloseableScope, lastCrash: Cause.Cause<unknown> | undefined): Effect.Effect<Outcome> {
    this.state = lastCrash === undefined ? "starting" : "restarting"
    this.activationScope = scope
    this.context ??= this.kind.context(this)
    return Effect.flatMap(Effect.exit(this.kind.build(this.context)), (built) => {
      if (Exit.isFailure(built)) return crash(built.cause)
      const behavior = built.value
      this.behavior = behavior
      this.receive = behavior.receive as Record<string, Handler>
      const restarted = lastCrash !== undefined && behavior.restarted !== undefined
        ? behavior.restarted(lastCrash)
        : undefined
      const hooks = restarted === undefined
        ? behavior.started
        : behavior.started === undefined
        ? restarted
        : Effect.zipRight(restarted, behavior.started)
      if (hooks === undefined) return this.running()
      return Effect.flatMap(Effect.exit(hooks), (exit) => Exit.isFailure(exit) ? crash(exit.cause) : this.running())
    })
  }

  private running(): Effect.Effect<Outcome> {
    if (this.state === "starting" || this.state === "restarting") this.state = "running"
    this.instanceRunning = true
    return this.loop
  }

  /** One step of the message loop: signals first, then the oldest message, else wait. */
  private step(): Effect.Effect<Outcome> {
    const signal = this.signal
    if (signal !== undefined && (signal._tag !== "Drain" || this.mailbox.length === 0)) {
      return Effect.succeed({ _tag: "Signal", signal })
    }
    const envelope = this.mailbox.shift()
    if (envelope === undefined) {
      // After handling messages, linger for one yield so that a sender in a
      // tight loop does not pay a fork per message.
      if (this.handledSinceIdle && !this.lingered) {
        this.lingered = true
        return this.lingerThenLoop
      }
      this.lingered = false
      this.handledSinceIdle = false
      // Checked empty and released in one synchronous step: the next enqueue forks a new fiber.
      this.fiber = undefined
      return idle
    }
    this.lingered = false
    this.handledSinceIdle = true
    this.busy = true
    this.current = envelope
    let handling: Effect.Effect<unknown, unknown>
    try {
      handling = this.receive![envelope.message._tag]!(envelope.message)
    } catch (defect) {
      // A handler that throws before returning its Effect crashes like one that dies inside it.
      handling = Effect.die(defect)
    }
    return Effect.flatMap(Effect.exit(handling), this.afterMessage)
  }

  private handled(exit: Exit.Exit<unknown, unknown>): Effect.Effect<Outcome> {
    const envelope = this.current!
    this.current = undefined
    this.busy = false
    this.activity++
    this.kind.metrics.handled()
    if (Exit.isSuccess(exit)) {
      envelope.reply?.(exit)
      return this.loop
    }
    if (isReplyFailure(exit.cause)) {
      if (envelope.reply !== undefined) {
        envelope.reply(exit)
        return this.loop
      }
      return Effect.zipRight(Effect.logDebug(`told message to ${this.address} failed`, exit.cause), this.loop)
    }
    envelope.reply?.(Exit.fail(new ActorCrashed({ address: this.address, defect: describeCause(exit.cause) })))
    return crash(exit.cause)
  }

  /** After the loop returns: go idle, terminate, or supervise the crash and maybe start the next instance. */
  private afterInstance(outcome: Outcome): Effect.Effect<void> {
    if (outcome._tag === "Idle") return Effect.void
    this.instanceRunning = false
    let cause: Cause.Cause<unknown>
    if (outcome._tag === "Signal") {
      const signal = outcome.signal
      if (signal._tag !== "ChildFailed") return this.terminate(signal._tag === "Drain" ? shutdownReason : signal.reason)
      cause = signal.cause
    } else {
      cause = outcome.cause
      // A stop or drain asked for before the crash wins: the actor is going away, not coming back.
      const pending = this.signal
      if (pending !== undefined && pending._tag !== "ChildFailed") {
        this.kind.metrics.crashed()
        return this.terminate(pending._tag === "Drain" ? shutdownReason : pending.reason)
      }
    }
    this.signal = undefined
    return Effect.flatMap(this.supervise(cause), (decision) => {
      if (decision._tag === "Terminate") {
        return Effect.zipRight(
          this.terminate(decision.reason),
          Effect.sync(() => {
            if (decision.escalate) this.escalate(cause)
          })
        )
      }
      this.kind.metrics.restarted()
      // A stop or drain cuts the backoff short instead of waiting it out.
      const stopRequested = Effect.async<void>((resume) => {
        this.interruptBackoff = () => resume(Effect.void)
        return Effect.sync(() => {
          this.interruptBackoff = undefined
        })
      })
      const backoff = decision.delayMillis > 0
        ? Effect.raceFirst(Effect.sleep(Duration.millis(decision.delayMillis)), stopRequested)
        : Effect.void
      return Effect.zipRight(
        Effect.zipRight(this.endInstance(), backoff),
        Effect.suspend(() => {
          // A stop or drain that arrived during the backoff wins over the restart.
          const pending = this.signal as Signal | undefined
          if (pending !== undefined && pending._tag !== "ChildFailed") {
            return this.terminate(pending._tag === "Drain" ? shutdownReason : pending.reason)
          }
          this.signal = undefined
          return this.activate(cause)
        })
      )
    })
  }

  /** Applies the kind's strategy to a crash. */
  private supervise(cause: Cause.Cause<unknown>): Effect.Effect<Decision> {
    const cell = this
    return Effect.gen(function*() {
      const strategy = cell.kind.strategy
      const defect = describeCause(cause)
      cell.kind.metrics.crashed()
      yield* Effect.logWarning(`actor ${cell.address} crashed`, cause)
      if (strategy._tag !== "Restart") {
        return { _tag: "Terminate", reason: new Termination.Crashed({ defect }), escalate: strategy._tag === "Escalate" } as const
      }
      const now = yield* Clock.currentTimeMillis
      const windowStart = now - Duration.toMillis(strategy.within)
      const recent = (cell.restartTimes ?? []).filter((t) => t > windowStart)
      cell.restartTimes = recent
      if (recent.length >= strategy.maxRestarts) {
        return {
          _tag: "Terminate",
          reason: new Termination.RestartLimit({ restarts: recent.length, defect }),
          escalate: strategy.onLimit === "escalate"
        } as const
      }
      recent.push(now)
      cell.restarts++
      const ceiling = Supervision.backoffCeiling(strategy.backoff, recent.length)
      return { _tag: "Restart", delayMillis: Math.floor((yield* Random.next) * ceiling) } as const
    })
  }

  private escalate(cause: Cause.Cause<unknown>): void {
    const parent = this.parent
    if (parent === undefined) return
    if (parent.state !== "stopping" && parent.state !== "stopped") parent.setSignal({ _tag: "ChildFailed", cause })
  }

  /** Ends the current instance (children, then its scope) without terminating the cell. */
  private endInstance(): Effect.Effect<void> {
    return Effect.zipRight(this.stopChildren(parentStopped), Effect.suspend(() => this.closeScope(Exit.void)))
  }

  private stopChildren(reason: Termination.TerminationReason): Effect.Effect<void> {
    return Effect.suspend(() => {
      const children = this.children
      if (children === undefined || children.size === 0) return Effect.void
      const waiting = Array.from(children)
      for (const child of waiting) {
        if (reason._tag === "Shutdown") child.setSignal({ _tag: "Drain" })
        else this.kind.system.requestTerminate(child, reason)
      }
      return Effect.forEach(waiting, (child) => child.done, { discard: true })
    })
  }

  private closeScope(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const scope = this.activationScope
    this.activationScope = undefined
    return scope === undefined ? Effect.void : Scope.close(scope, exit)
  }

  /** Children first, then the stopping hook, then the scope; never fails. */
  private terminate(reason: Termination.TerminationReason): Effect.Effect<void> {
    const cell = this
    return Effect.gen(function*() {
      cell.state = "stopping"
      cell.kind.system.unregister(cell)
      // Children drain with their parent at shutdown; otherwise they stop because the parent does.
      yield* cell.stopChildren(reason._tag === "Shutdown" ? reason : parentStopped)
      const stopping = cell.behavior?.stopping
      if (stopping !== undefined && !cell.stoppingHookRan) {
        cell.stoppingHookRan = true
        const hook = yield* Effect.exit(stopping(reason))
        if (Exit.isFailure(hook)) yield* Effect.logError(`stopping hook of ${cell.address} failed`, hook.cause)
      }
      yield* cell.closeScope(Exit.void)
      cell.finalize(reason)
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.zipRight(
          Effect.logError(`terminating ${cell.address} failed`, cause),
          Effect.sync(() => cell.finalize(reason))
        )
      )
    )
  }

  /** Synchronous last rites: fail what is queued, tell watchers, release the address. Idempotent. */
  finalize(reason: Termination.TerminationReason): void {
    if (this.state === "stopped") return
    this.state = "stopped"
    this.behavior = undefined
    this.receive = undefined
    this.context = undefined
    this.fiber = undefined
    const system = this.kind.system
    system.unregister(this)
    const label = Termination.label(reason)
    // An ask being handled when the fiber was interrupted (shutdown deadline) is answered too; a told
    // message in that position reached its handler, so it is not a dead letter.
    const inFlight = this.current
    this.current = undefined
    if (inFlight?.reply !== undefined) this.mailbox.unshift(inFlight)
    for (const envelope of this.mailbox.drain()) {
      if (envelope.reply !== undefined) {
        envelope.reply(Exit.fail(new ActorStopped({ address: this.address, reason: label })))
      } else {
        system.deadLetter(this, envelope.message, label)
      }
    }
    this.kind.metrics.stopped(label)
    this.parent?.children?.delete(this)
    if (this.watching !== undefined) {
      for (const target of this.watching) target.watchers?.delete(this)
      this.watching = undefined
    }
    const watchers = this.watchers
    this.watchers = undefined
    if (watchers !== undefined) {
      const notice = new Termination.Terminated({ address: this.address, reason })
      for (const onTerminated of watchers.values()) onTerminated(notice)
    }
    system.released(this)
    this.finalReason = reason
    if (this.doneDeferred !== undefined) Deferred.unsafeDone(this.doneDeferred, Exit.succeed(reason))
  }
}
