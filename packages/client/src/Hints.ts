/**
 * Hints from the environment that the connection may have changed: the
 * network went offline or came back, the page became visible again. In a
 * browser they come from `online`/`offline` on `window` and
 * `visibilitychange` on `document`; elsewhere there are none (unless the app
 * passes its own source, e.g. from a mobile runtime's network API).
 */

export type Hint = "online" | "offline" | "visible" | "hidden"

export interface HintSource {
  /** Whether the network is believed to be up right now. */
  readonly isOnline: () => boolean
  /** Starts listening; returns the function that stops. */
  readonly subscribe: (listener: (hint: Hint) => void) => () => void
}

/** The browser's hints, or `undefined` outside a browser. */
export const browserHints = (): HintSource | undefined => {
  if (typeof globalThis.addEventListener !== "function" || typeof globalThis.removeEventListener !== "function") return undefined
  if (typeof navigator === "undefined" || typeof navigator.onLine !== "boolean") return undefined
  const doc = typeof document === "undefined" ? undefined : document
  return {
    isOnline: () => navigator.onLine,
    subscribe: (listener) => {
      const online = () => listener("online")
      const offline = () => listener("offline")
      const visibility = () => listener(doc?.visibilityState === "hidden" ? "hidden" : "visible")
      globalThis.addEventListener("online", online)
      globalThis.addEventListener("offline", offline)
      doc?.addEventListener("visibilitychange", visibility)
      return () => {
        globalThis.removeEventListener("online", online)
        globalThis.removeEventListener("offline", offline)
        doc?.removeEventListener("visibilitychange", visibility)
      }
    }
  }
}
