// A real webhook receiver for the worker tests: node:http on 127.0.0.1, a fresh
// Standard Webhooks secret per path (one path per authority), every signature
// checked with the `standardwebhooks` package, and every attempt recorded.
//
// It can be told to answer a given status (503, 410, ...) or to compute one,
// to answer slowly, and to go down (server closed, every open connection cut)
// and come back on the SAME port, as a partner's endpoint would after an outage.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import type { AuthorityWebhook } from '../../src/domain/types.js'

/** One HTTP request that reached the receiver (an attempt, whatever it was answered). */
export interface Delivery {
  /** Arrival time (ms). */
  at: number
  /** The `webhook-id` header. */
  webhookId: string
  path: string
  /** The raw body, exactly as received. */
  raw: string
  /** The body parsed as JSON (undefined if it is not JSON). */
  body: any
  /** Whether the signature verified against the secret registered for `path`. */
  verified: boolean
  verifyError?: string
  /** The status the receiver answered (or was about to answer, see `answered`). */
  status: number
  /** False while a slow answer is pending, or if the client went away before it. */
  answered: boolean
  headers: Record<string, string>
}

export type AnswerRule = number | ((delivery: Delivery) => number)

interface Teardownable { teardown: (fn: () => unknown) => void }

/** `whsec_` + base64 of 24 random bytes, the Standard Webhooks secret format. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`

export class Receiver {
  readonly deliveries: Delivery[] = []
  #server: Server | undefined
  #port = 0
  #secrets = new Map<string, string>()
  #answer: AnswerRule = 204
  #delayMs = 0
  #pending = new Set<{ timer: NodeJS.Timeout, res: ServerResponse }>()
  #listeners = new Set<() => void>()

  /** Starts on 127.0.0.1 with a port chosen by the system; closed at teardown. */
  static async start (t?: Teardownable): Promise<Receiver> {
    const receiver = new Receiver()
    t?.teardown(() => receiver.close())
    await receiver.up()
    return receiver
  }

  get port (): number { return this.#port }
  get origin (): string { return `http://127.0.0.1:${this.#port}` }
  get isUp (): boolean { return this.#server !== undefined }

  /** A fresh secret registered for `path`, and the webhook config that points at it. */
  webhook (path: string, opts: Partial<Omit<AuthorityWebhook, 'url' | 'secret'>> = {}): AuthorityWebhook {
    const secret = newWebhookSecret()
    this.#secrets.set(path, secret)
    return { url: this.origin + path, secret, retryScheduleSeconds: opts.retryScheduleSeconds ?? [0, 1, 1, 2], timeoutMs: opts.timeoutMs ?? 2000 }
  }

  /** Answer every following attempt with this status (or the status a function picks). */
  answer (rule: AnswerRule): void { this.#answer = rule }

  /** Hold every following answer this long (deliveries in flight). */
  delay (ms: number): void { this.#delayMs = ms }

  /** Deliveries answered 2xx. */
  accepted (): Delivery[] { return this.deliveries.filter((d) => d.answered && d.status >= 200 && d.status < 300) }

  /** Attempts at one path carrying events of one type about one request. */
  about (requestId: string, type?: string, path?: string): Delivery[] {
    return this.deliveries.filter((d) => d.body?.data?.requestId === requestId && (type === undefined || d.body?.type === type) && (path === undefined || d.path === path))
  }

  /** Resolves with the deliveries once `predicate` holds of them; rejects with a summary after `timeoutMs`. */
  async waitFor (predicate: (deliveries: Delivery[]) => boolean, timeoutMs: number, what = 'the expected deliveries'): Promise<Delivery[]> {
    if (predicate(this.deliveries)) return this.deliveries
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        let ok = false
        try { ok = predicate(this.deliveries) } catch (error) { finish(); reject(error); return }
        if (ok) { finish(); resolve(this.deliveries) }
      }
      const poll = setInterval(check, 50)
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`receiver: timed out after ${timeoutMs} ms waiting for ${what}; got ${this.deliveries.length} attempt(s): ` +
          this.deliveries.slice(-20).map((d) => `${d.path} ${String(d.body?.type)} ${d.status}${d.verified ? '' : ' (unverified)'}`).join('; ')))
      }, timeoutMs)
      const finish = (): void => { clearInterval(poll); clearTimeout(timer); this.#listeners.delete(check) }
      this.#listeners.add(check)
    })
  }

  /** Closes the server and cuts every open connection: the endpoint is unreachable until up(). */
  async down (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    for (const pending of this.#pending) clearTimeout(pending.timer)
    this.#pending.clear()
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  /** Listens again, on the same port as before (a system-chosen one the first time). */
  async up (): Promise<void> {
    if (this.#server !== undefined) return
    const server = createServer((req, res) => { this.#handle(req, res) })
    // Advertised to the client (Keep-Alive: timeout=1): undici then does not reuse an idle
    // connection the server may be closing, so no attempt fails for the receiver's sake.
    server.keepAliveTimeout = 1000
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(this.#port, '127.0.0.1', () => { server.off('error', reject); resolve() })
        })
        break
      } catch (error) {
        if (attempt >= 50 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    this.#port = (server.address() as AddressInfo).port
    this.#server = server
  }

  async close (): Promise<void> {
    await this.down()
    this.#listeners.clear()
  }

  #handle (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value
      const path = (req.url ?? '/').split('?')[0]
      let body: any
      try { body = JSON.parse(raw) } catch { body = undefined }
      const delivery: Delivery = { at: Date.now(), webhookId: headers['webhook-id'] ?? '', path, raw, body, verified: false, status: 0, answered: false, headers }
      const secret = this.#secrets.get(path)
      if (secret === undefined) {
        delivery.verifyError = `no secret registered for ${path}`
      } else {
        try {
          new Webhook(secret).verify(raw, headers)
          delivery.verified = true
        } catch (error) {
          delivery.verifyError = error instanceof Error ? error.message : String(error)
        }
      }
      delivery.status = !delivery.verified ? 401 : typeof this.#answer === 'number' ? this.#answer : this.#answer(delivery)
      this.deliveries.push(delivery)
      for (const listener of this.#listeners) listener()
      const send = (): void => {
        if (res.destroyed) return
        res.writeHead(delivery.status, { 'content-type': 'text/plain' })
        res.end(delivery.verified ? 'ok' : `signature rejected: ${delivery.verifyError ?? ''}`, () => { delivery.answered = true; for (const listener of this.#listeners) listener() })
      }
      if (this.#delayMs <= 0) { send(); return }
      const pending = { timer: setTimeout(() => { this.#pending.delete(pending); send() }, this.#delayMs), res }
      this.#pending.add(pending)
    })
  }
}

/** Shorthand: a started receiver, closed at teardown. */
export const startReceiver = (t?: Teardownable): Promise<Receiver> => Receiver.start(t)
