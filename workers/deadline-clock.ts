import type { FastifyBaseLogger } from 'fastify'
import type { DeadlineKind } from '../src/domain/deadlines.js'
import type { RequestStore } from '../src/store/request-store.js'
import type { DeadlineFirer } from './deadlines.js'

export interface DeadlineClockOptions {
  /** A claimed request whose worker died is taken again after this long (ms). */
  leaseMs?: number
  /** Requests claimed per round trip. */
  batchSize?: number
  /** Requests fired at once. */
  concurrency?: number
  /** Sleep when nothing is due (ms): the worst added lateness when idle. */
  idlePollMs?: number
  /** Told of each request fired: what it recorded (often nothing) and when. */
  onFired?: (requestId: string, recorded: DeadlineKind[], at: number) => void
}

const defaults = { leaseMs: 30_000, batchSize: 500, concurrency: 64, idlePollMs: 50 }

/**
 * Fires deadlines from the sorted set in which every open request has one entry
 * scored by when it next needs us. One claim takes a whole batch of due entries
 * (leased, not removed); each request's own commit then moves its entry to its
 * next deadline, so nothing is lost if this process dies mid-batch, and a
 * thousand deadlines falling due together cost a few round trips to claim.
 */
export class DeadlineClock {
  readonly #options: typeof defaults & Pick<DeadlineClockOptions, 'onFired'>
  #running = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined

  constructor (
    private readonly store: RequestStore,
    private readonly firer: DeadlineFirer,
    private readonly log: FastifyBaseLogger,
    options: DeadlineClockOptions = {}
  ) {
    this.#options = { ...defaults, ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) }
  }

  start (): void {
    this.#running = true
    this.#loop = this.#run()
  }

  async stop (): Promise<void> {
    this.#running = false
    this.#wake?.()
    await this.#loop
  }

  /** Claims what is due at `now` and fires it; returns how many requests it took. */
  async tick (now = Date.now()): Promise<number> {
    const { leaseMs, batchSize, concurrency, onFired } = this.#options
    const claimed = await this.store.claimDueDeadlines(now, now + leaseMs, batchSize)
    let next = 0
    const runner = async (): Promise<void> => {
      while (next < claimed.length) {
        const { id } = claimed[next++]
        try {
          const recorded = await this.firer.fireDue(id, now)
          onFired?.(id, recorded, Date.now())
        } catch (err) {
          // Its entry keeps the lease: it is fired again once the lease runs out.
          this.log.error({ err, requestId: id }, 'deadline: firing failed; retried after the lease')
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, claimed.length) }, runner))
    return claimed.length
  }

  async #run (): Promise<void> {
    while (this.#running) {
      let fired = 0
      try {
        fired = await this.tick()
      } catch (err) {
        if (!this.#running) break
        this.log.error({ err }, 'deadline: claiming due deadlines failed; retrying')
        await this.#sleep(500)
        continue
      }
      if (fired === 0) await this.#sleep(this.#options.idlePollMs)
    }
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.#wake = () => { clearTimeout(timer); resolve() }
    })
    this.#wake = undefined
  }
}
