/**
 * The `Scope` an actor's build and handlers see: it forwards to the scope of
 * the actor's current activation, which is closed on restart and on stop.
 *
 * It is put in the context of the actor's fibers when they are forked, which
 * costs one context copy per fork, instead of `Scope.extend` around every
 * build, which costs a FiberRef round trip (about 8 µs, the largest part of an
 * activation).
 */
import { Effect, ExecutionStrategy, Scope } from "effect"
import { pipeArguments } from "effect/Pipeable"

export interface ScopeOwner {
  /** The current activation's scope, or `undefined` between activations. */
  readonly activationScope: Scope.CloseableScope | undefined
  readonly address: string
}

export class ActivationScope implements Scope.Scope {
  readonly [Scope.ScopeTypeId]: typeof Scope.ScopeTypeId = Scope.ScopeTypeId

  constructor(private readonly owner: ScopeOwner) {}

  private current(): Effect.Effect<Scope.CloseableScope> {
    return Effect.suspend(() => {
      const scope = this.owner.activationScope
      return scope === undefined
        ? Effect.dieMessage(`actor ${this.owner.address} has no activation scope (used after stop?)`)
        : Effect.succeed(scope)
    })
  }

  get strategy(): ExecutionStrategy.ExecutionStrategy {
    return this.owner.activationScope?.strategy ?? ExecutionStrategy.sequential
  }

  fork(strategy: ExecutionStrategy.ExecutionStrategy): Effect.Effect<Scope.CloseableScope> {
    return Effect.flatMap(this.current(), (scope) => Scope.fork(scope, strategy))
  }

  addFinalizer(finalizer: Scope.Scope.Finalizer): Effect.Effect<void> {
    return Effect.flatMap(this.current(), (scope) => Scope.addFinalizerExit(scope, finalizer))
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}
