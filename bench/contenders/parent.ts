/**
 * Bench helper processes end when the bench does, even if it was killed
 * without a chance to clean up: each polls its parent (`--parent <pid>`, else
 * the process that started it) once a second and exits when it is gone.
 * (`parent.mjs` is the same for the Node contenders.)
 */
export const watchParent = (stop: () => void): void => {
  const i = process.argv.indexOf("--parent")
  const parent = i === -1 ? process.ppid : Number(process.argv[i + 1])
  const exit = () => {
    try {
      stop()
    } finally {
      process.exit(0)
    }
  }
  setInterval(() => {
    let alive = process.ppid === parent
    try {
      process.kill(parent, 0)
    } catch {
      alive = false
    }
    if (!alive) exit()
  }, 1000).unref()
  process.on("SIGTERM", exit)
  process.on("SIGINT", exit)
}
