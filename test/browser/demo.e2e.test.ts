/**
 * The demo and dashboard pages in a real browser: Debian's Chromium
 * (`/usr/bin/chromium`, which `.ci/run` installs) driven headless by
 * `playwright-core`, against a real Bun node started in dev mode on
 * 127.0.0.1. Two people sign in, join the same room, see each other, chat
 * (send, edit, pin, reply, typing), one sends the other a notification from
 * the form, and the dashboard shows their two connections.
 */
import { existsSync } from "node:fs"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningNode, startListeningNode } from "../support/bunNode.ts"

const chromiumPath = "/usr/bin/chromium"
/** Every wait in the page has this deadline (a failure names what it waited for). */
const timeout = 15_000

let node: RunningNode
let browser: Browser
const contexts: Array<BrowserContext> = []
/** Uncaught errors in any page: the test fails if there are any. */
const pageErrors: Array<string> = []

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (.ci/run does)`)
  ;[node, browser] = await Promise.all([
    startListeningNode(["--dev", "--node-id", "browser-test"]),
    chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] })
  ])
}, 60_000)

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
  node?.kill()
})

/** A page in its own browser context (its own storage: another person), logging its errors. */
const openPage = async (path: string): Promise<Page> => {
  const context = await browser.newContext()
  contexts.push(context)
  const page = await context.newPage()
  page.setDefaultTimeout(timeout)
  page.on("pageerror", (error) => pageErrors.push(`${path}: ${error.message}`))
  await page.goto(`${node.url()}${path}`)
  return page
}

const signIn = async (name: string): Promise<Page> => {
  const page = await openPage("/")
  await page.locator("#name").fill(name)
  await page.locator("#signin-form button").click()
  await page.locator("#app").waitFor({ state: "visible" })
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "connected")
  // It joins the room in the room field, `general`.
  await page.locator("#room-list li[data-room='general']").waitFor()
  return page
}

const message = (page: Page, from: string, text: string) =>
  page.locator(`#messages li.message[data-from='${from}']`, { has: page.locator(".text", { hasText: text }) })

const textIs = (page: Page, selector: string, text: string) =>
  page.waitForFunction(([selector, text]) => document.querySelector(selector!)?.textContent === text, [selector, text] as const)

describe("the demo page in Chromium", () => {
  it("two people chat in one room; a notification from the form arrives; the dashboard shows both connections", async () => {
    const alice = await signIn("alice")
    expect(await alice.locator("#mode").textContent()).toBe("dev mode")
    const bob = await signIn("bob")

    // Presence: each sees the other (bob joined after alice: a live join event for her).
    await alice.locator("#presence li[data-user='bob']").waitFor()
    await bob.locator("#presence li[data-user='alice']").waitFor()
    await textIs(bob, "#presence-count", "2")

    // Alice sends; Bob sees the message, from her.
    await alice.locator("#message-input").fill("hello from alice")
    await alice.locator("#message-input").press("Enter")
    const onBob = message(bob, "alice", "hello from alice")
    await onBob.waitFor()
    expect(await onBob.locator(".from").textContent()).toBe("alice")
    // Shown in the browser's local time, from the server's UTC `at`.
    expect(await onBob.locator("time").getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/)

    // She edits it; Bob sees the new text, marked edited.
    const onAlice = message(alice, "alice", "hello from alice")
    await onAlice.locator("button[data-action='edit']").click()
    await alice.locator("#messages .edit-input").fill("hello everyone")
    await alice.locator("#messages .edit-input").press("Enter")
    const edited = message(bob, "alice", "hello everyone")
    await edited.locator(".edited").waitFor()

    // Bob pins it; Alice sees it pinned, and in the pinned list.
    await edited.locator("button[data-action='pin']").click()
    await message(alice, "alice", "hello everyone").locator(".pinned").waitFor()
    await alice.locator("#pins li", { hasText: "alice: hello everyone" }).waitFor()

    // Bob starts typing a reply: Alice sees him typing, then his reply quoting her message.
    await edited.locator("button[data-action='reply']").click()
    await bob.locator("#message-input").pressSequentially("hi alice")
    await textIs(alice, "#typing", "bob is typing…")
    await bob.locator("#message-input").press("Enter")
    const reply = message(alice, "bob", "hi alice")
    await reply.waitFor()
    expect(await reply.locator(".quote").textContent()).toBe("↪ alice: hello everyone")

    // Alice notifies Bob from the form; it reaches his page, unread, until he marks it read.
    await alice.locator("#notify-user").fill("bob")
    await alice.locator("#notify-text").fill("your order shipped")
    await alice.locator("#notify-form button").click()
    await alice.locator("#notify-result", { hasText: "delivered to 1 device of bob" }).waitFor()
    const notification = bob.locator("#notifications li.notification.unread", { hasText: "your order shipped" })
    await notification.waitFor()
    await textIs(bob, "#unread", "1")
    await notification.locator("button[data-action='read']").click()
    await textIs(bob, "#unread", "0")
    await bob.locator("#notifications li.notification:not(.unread)", { hasText: "your order shipped" }).waitFor()

    // The dashboard: this node, its two connections, the room with its two members.
    const dashboard = await openPage("/dashboard")
    await textIs(dashboard, "#total-connections", "2")
    await dashboard.locator("#nodes tr[data-node='browser-test']").waitFor()
    await dashboard.waitForFunction(() => {
      const cells = document.querySelectorAll("#rooms tr[data-room='general'] td")
      return cells[1]?.textContent === "2" && cells[2]?.textContent === "2"
    })
    await textIs(dashboard, "#feed-status", "live")

    expect(pageErrors).toEqual([])
  }, 120_000)

  it("a node not in dev mode serves the demo page, which says sign-in is unavailable", async () => {
    const plain = await startListeningNode(["--node-id", "browser-plain"])
    try {
      const context = await browser.newContext()
      contexts.push(context)
      const page = await context.newPage()
      page.setDefaultTimeout(timeout)
      page.on("pageerror", (error) => pageErrors.push(`plain: ${error.message}`))
      await page.goto(`${plain.url()}/`)
      await page.locator("#signin-note", { hasText: "Sign-in is unavailable" }).waitFor()
      expect(await page.locator("#signin-form").isVisible()).toBe(false)
      expect(await page.locator("#mode").textContent()).toBe("production mode")
      expect(pageErrors).toEqual([])
    } finally {
      plain.kill()
    }
  }, 60_000)
})
