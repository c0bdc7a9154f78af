// A lean webhook receiver for the benchmarks: node:http on 127.0.0.1, one
// Standard Webhooks secret per path, every signature verified, and the arrival
// time (performance.now(), this process's clock) of each event kept by
// request id, so that latencies are measured on one clock with the sender.
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import type { AuthorityWebhook } from '../../src/domain/types.js'

export const newWebhookSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`

export class BenchReceiver {
  /** Arrival time of the first verified delivery, by `${path} ${type} ${requestId}`. */
  readonly arrivals = new Map<string, number>()
  received = 0
  unverified = 0
  duplicates = 0
  #server: Server | undefined
  #port = 0
  #verifiers = new Map<string, Webhook>()
  #waiters = new Set<() => void>()

  static async start (): Promise<BenchReceiver> {
    const receiver = new BenchReceiver()
    await receiver.#listen()
    return receiver
  }

  get origin (): string { return `http://127.0.0.1:${this.#port}` }

  /** A fresh secret for `path`, and the webhook registration that points at it. */
  webhook (path: string, retryScheduleSeconds = [0, 1, 5, 30], timeoutMs = 5000): AuthorityWebhook {
    const secret = newWebhookSecret()
    this.#verifiers.set(path, new Webhook(secret))
    return { url: this.origin + path, secret, retryScheduleSeconds, timeoutMs }
  }

  arrival (path: string, type: string, requestId: string): number | undefined {
    return this.arrivals.get(`${path} ${type} ${requestId}`)
  }

  /** Resolves when `predicate` holds (checked on every arrival) or after timeoutMs (resolves false). */
  async until (predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    if (predicate()) return true
    return await new Promise<boolean>((resolve) => {
      const check = (): void => { if (predicate()) { done(); resolve(true) } }
      const timer = setTimeout(() => { done(); resolve(predicate()) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.#waiters.delete(check) }
      this.#waiters.add(check)
    })
  }

  async close (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  async #listen (): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const at = performance.now()
        const raw = Buffer.concat(chunks).toString('utf8')
        const path = (req.url ?? '/').split('?')[0]
        const verifier = this.#verifiers.get(path)
        let status = 204
        try {
          if (verifier === undefined) throw new Error('no secret for this path')
          verifier.verify(raw, req.headers as Record<string, string>)
          const body = JSON.parse(raw) as { type: string, data: { requestId: string } }
          const key = `${path} ${body.type} ${body.data.requestId}`
          if (this.arrivals.has(key)) this.duplicates++
          else this.arrivals.set(key, at)
          this.received++
        } catch {
          this.unverified++
          status = 401
        }
        res.writeHead(status).end()
        for (const waiter of this.#waiters) waiter()
      })
    })
    server.keepAliveTimeout = 10_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    this.#port = (server.address() as AddressInfo).port
    this.#server = server
  }
}
