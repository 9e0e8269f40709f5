/**
 * A registered kind: its definition, behavior, options and live cells.
 */
import { Context, Duration, Effect, FiberRef, FiberRefs, HashMap, Runtime, Scope } from "effect"
import type { FiberId } from "effect"
import type { ActorContext, ActorDefinition, ActorRef, Behavior, Build, Message, Options } from "../Actor.ts"
import type { ActorAddress } from "../ActorAddress.ts"
import type { Terminated } from "../Termination.ts"
import { MailboxFull } from "../ActorError.ts"
import * as Mailbox from "../Mailbox.ts"
import * as Supervision from "../Supervision.ts"
import type { Cell } from "./cell.ts"
import { KindMetrics } from "./metrics.ts"
import type { SystemImpl } from "./system.ts"

/**
 * The fiber's refs with the log annotation `actor=<address>`, so that every log line of the actor
 * (its handlers, hooks and the runtime's own) names it. Set when the fiber is made, rather than
 * with `Effect.annotateLogs` around its work, which costs a scoped acquire and release per fork.
 */
const annotated = (refs: FiberRefs.FiberRefs, fiberId: FiberId.Runtime, address: string): FiberRefs.FiberRefs =>
  FiberRefs.updateAs(refs, {
    fiberId,
    fiberRef: FiberRef.currentLogAnnotations,
    value: HashMap.set(FiberRefs.getOrDefault(refs, FiberRef.currentLogAnnotations), "actor", address)
  })

export class KindEntry {
  /** The activation each key routes to. */
  readonly cells = new Map<string, Cell>()
  /** Activations that left `cells` but have not finished terminating; a successor waits for them. */
  readonly terminating = new Map<string, Cell>()
  readonly mailbox: Mailbox.MailboxConfig<Message>
  readonly droppable: (message: Message) => boolean
  readonly strategy: Supervision.Strategy
  readonly passivateMillis: number | undefined
  readonly activateOnMessage: boolean
  readonly metrics: KindMetrics
  /** Set while the kind's layer is being released: no new activations. */
  closing = false
  /** Forks a fiber running `cell` on the next scheduler tick, never inside the caller's stack. */
  readonly fork: (cell: Cell) => void

  constructor(
    readonly system: SystemImpl,
    readonly definition: ActorDefinition<string, Message>,
    private readonly userBuild: Build<Message, never>,
    runtime: Runtime.Runtime<never>,
    options: Options<Message>
  ) {
    this.mailbox = options.mailbox ?? { capacity: Mailbox.defaultCapacity, overflow: "reject" }
    if (!Number.isInteger(this.mailbox.capacity) || this.mailbox.capacity < 1) {
      throw new Error(`mailbox capacity of ${definition.kind} must be a positive integer`)
    }
    this.droppable = this.mailbox.droppable ?? (() => true)
    this.strategy = options.supervision ?? Supervision.defaultStrategy
    this.passivateMillis = options.passivateAfter === undefined
      ? undefined
      : Duration.toMillis(Duration.decode(options.passivateAfter))
    this.activateOnMessage = (options.activation ?? (this.passivateMillis === undefined ? "explicit" : "onMessage")) ===
      "onMessage"
    this.metrics = new KindMetrics(definition.kind)
    this.fork = (cell) => {
      const cellRuntime = Runtime.make({
        context: Context.add(runtime.context, Scope.Scope, cell.scopeService),
        fiberRefs: runtime.fiberRefs,
        runtimeFlags: runtime.runtimeFlags
      })
      cell.fiber = Runtime.runFork(cellRuntime)(cell.run(), {
        immediate: false,
        updateRefs: (refs, fiberId) => annotated(refs, fiberId, cell.address)
      })
    }
  }

  get name(): string {
    return this.definition.kind
  }

  start(cell: Cell): void {
    this.metrics.started()
    cell.notify()
  }

  /** The build, whose `Scope` requirement is met by the `ActivationScope` in every actor fiber's context (see `fork`). */
  build(ctx: ActorContext<Message>): Effect.Effect<Behavior<Message, never>, unknown> {
    return Effect.suspend(() => this.userBuild(ctx)) as Effect.Effect<Behavior<Message, never>, unknown>
  }

  mailboxFull(address: string): MailboxFull {
    return new MailboxFull({ address, capacity: this.mailbox.capacity })
  }

  /** The context a behavior sees; one per actor, shared by its restarts. */
  context(cell: Cell): ActorContext<Message> {
    return new ContextImpl(this, cell)
  }
}

class ContextImpl implements ActorContext<Message> {
  readonly address: ActorAddress
  readonly self: ActorRef<Message>

  constructor(private readonly entry: KindEntry, private readonly cell: Cell) {
    this.self = cell.self ?? entry.system.ref(entry.definition, cell.key)
    this.address = this.self.address
  }

  get restarts(): number {
    return this.cell.restarts
  }

  spawn<Kind extends string, M extends Message>(definition: ActorDefinition<Kind, M>, key: string) {
    return this.entry.system.spawn(definition, key, this.cell)
  }

  watch(target: ActorAddress, onTerminated: (notice: Terminated) => Message): Effect.Effect<void> {
    return Effect.sync(() =>
      this.entry.system.watch(this.cell, target, (notice) => {
        this.entry.system.tellSync(this.entry, this.cell.key, onTerminated(notice))
      })
    )
  }

  unwatch(target: ActorAddress): Effect.Effect<void> {
    return Effect.sync(() => this.entry.system.unwatch(this.cell, target))
  }

  get stop(): Effect.Effect<void> {
    return Effect.sync(() => this.entry.system.requestTerminate(this.cell))
  }
}
