import type { FastifyBaseLogger } from 'fastify'
import type { DeadlineKind } from '../src/domain/deadlines.js'
import type { RequestStore, StoredRequest } from '../src/store/request-store.js'
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

const defaults = { leaseMs: 30_000, batchSize: 500, concurrency: 256, idlePollMs: 50 }

/**
 * Fires deadlines from the sorted set in which every open request has one entry
 * scored by when it next needs us. One claim takes a batch of due entries
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

  async #fire (id: string, now: number, loaded: StoredRequest | undefined): Promise<void> {
    try {
      const recorded = await this.firer.fireDue(id, now, loaded)
      this.#options.onFired?.(id, recorded, Date.now())
    } catch (err) {
      // Its entry keeps the lease: it is fired again once the lease runs out.
      this.log.error({ err, requestId: id }, 'deadline: firing failed; retried after the lease')
    }
  }

  /**
   * Keeps up to `concurrency` requests firing, claiming more as a quarter of the
   * slots free up: claims stay batched, and nothing claimed waits behind a slow one.
   */
  async #run (): Promise<void> {
    const { leaseMs, batchSize, concurrency, idlePollMs } = this.#options
    const inFlight = new Set<Promise<void>>()
    const refillBelow = Math.max(1, Math.floor(concurrency * 0.75))
    while (this.#running) {
      if (inFlight.size > refillBelow) {
        await Promise.race(inFlight)
        continue
      }
      const now = Date.now()
      let claimed: Array<{ id: string }>
      try {
        claimed = await this.store.claimDueDeadlines(now, now + leaseMs, Math.min(batchSize, concurrency - inFlight.size))
      } catch (err) {
        if (!this.#running) break
        this.log.error({ err }, 'deadline: claiming due deadlines failed; retrying')
        await this.#sleep(500)
        continue
      }
      // One round trip reads the whole batch; each firing then costs its commit alone.
      const records = new Map((await this.#read(claimed.map(({ id }) => id))).map((request) => [request.id, request]))
      for (const { id } of claimed) {
        const firing: Promise<void> = this.#fire(id, now, records.get(id)).finally(() => inFlight.delete(firing))
        inFlight.add(firing)
      }
      if (claimed.length === 0) await Promise.race([...inFlight, this.#sleep(idlePollMs)])
    }
    await Promise.all(inFlight)
  }

  /** The records of a claimed batch; on a failure none (each firing reads its own). */
  async #read (ids: string[]): Promise<StoredRequest[]> {
    if (ids.length === 0) return []
    try {
      return await this.store.getMany(ids, { payload: false })
    } catch (err) {
      this.log.warn({ err }, 'deadline: reading a claimed batch failed; each request is read on its own')
      return []
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
