// Exit when the bench that started this process is gone (types and doc: parent.d.mts).
export const watchParent = (stop) => {
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

export const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
