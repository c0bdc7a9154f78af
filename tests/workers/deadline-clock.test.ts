// The deadline clock on a real Redis: what a worker that dies holding a batch
// leaves behind (a lease, not a loss), and what a zombie that wakes up after
// the lease does (nothing: the record says it was done).
import { Redis } from 'ioredis'
import pino from 'pino'
import t from 'tap'
import { parseGatewayConfig } from '../../src/config/gateway-config.js'
import type { Principal } from '../../src/domain/permissions.js'
import { RequestService, type SubmittedBody } from '../../src/services/request-service.js'
import { PayloadCipher } from '../../src/store/payload-cipher.js'
import { RequestStore } from '../../src/store/request-store.js'
import { DeadlineClock } from '../../workers/deadline-clock.js'
import { createDeadlineFirer, type DeadlineFirer } from '../../workers/deadlines.js'
import { demoConfig, payloadKey } from '../helpers/app.js'
import { agreementOf } from '../helpers/config.js'
import { eventually } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'
import { mlaBody } from './harness.js'

const config = demoConfig()
Object.assign(agreementOf(config, 'coe1959-tr-moj-nl-airs'), { acknowledgeWithin: 'PT1S', respondWithin: 'PT60S', reminderAtFraction: 0.5 })
parseGatewayConfig(config, 'test config')
const redis = await startRedis(t)
const connection = new Redis(redis.url, { maxRetriesPerRequest: null })
t.teardown(() => connection.disconnect())
const store = new RequestStore(connection)
const service = new RequestService(store, new PayloadCipher(payloadKey), config, 3600)
const log = pino({ level: 'silent' })
const sender: Principal = { authority: 'TR-MOJ', roles: ['agency'], subject: 'clerk@tr-moj' }

const overdueEvents = async (id: string): Promise<number> => {
  const request = await store.get(id)
  if (request === undefined) return 0
  return (await store.events(request)).filter((event) => event.type === 'request.acknowledgement_overdue').length
}

t.test('a worker that dies holding due deadlines delays them by its lease, and they are fired once', async (t) => {
  const real = createDeadlineFirer(service, config)
  // The dying worker: it claims, then never finishes (until we let its firings go, late, as a zombie would).
  const held: Array<() => void> = []
  const taken: string[] = []
  const dying: DeadlineFirer = {
    fire: real.fire,
    fireDue: async (id, now) => {
      taken.push(id)
      await new Promise<void>((resolve) => held.push(resolve))
      return await real.fireDue(id, now)
    }
  }
  const leaseMs = 1500
  const dead = new DeadlineClock(store, dying, log, { leaseMs, idlePollMs: 10 })

  const submitted = await service.submit(sender, { ...mlaBody(), recipient: 'NL-AIRS' } as SubmittedBody)
  t.equal(submitted.kind, 'created', 'submitted')
  const id = submitted.request.id
  const ackDue = submitted.request.ackDue!
  t.equal(await store.nextDeadlineOf(id), submitted.request.submittedAt + 500, 'in the deadline set at its reminder (half the 1 s clock)')

  // Let the request reach its deadline with nobody firing, then the dying worker takes it.
  await eventually('the acknowledgement deadline to pass', async () => (Date.now() > ackDue + 50 ? true : undefined), 5000, 10)
  dead.start()
  await eventually('the dying worker to claim the request', async () => (taken.includes(id) ? true : undefined), 5000, 10)
  const claimedAt = Date.now()
  // It claims nothing more (it is dead); its stop() finishes once its held firings are let go.
  const deadStopped = dead.stop()
  const leased = await store.nextDeadlineOf(id)
  t.ok(leased !== undefined && leased >= claimedAt + leaseMs - 200 && leased <= claimedAt + leaseMs + 200, 'the claim pushed the entry to the end of the lease')

  const fired: Array<{ id: string, recorded: string[], at: number }> = []
  const alive = new DeadlineClock(store, real, log, { leaseMs, idlePollMs: 10, onFired: (firedId, recorded, at) => { fired.push({ id: firedId, recorded, at }) } })
  alive.start()
  t.teardown(() => alive.stop())
  await eventually('the live worker to fire it', async () => (fired.some((f) => f.id === id) ? true : undefined), 10_000, 10)
  const firing = fired.find((f) => f.id === id)!
  t.same(firing.recorded, ['acknowledgement_due'], 'the live worker recorded the overdue acknowledgement (the reminder is moot once its deadline has passed)')
  t.ok(firing.at >= (leased ?? 0), `not before the lease ran out (${firing.at - (leased ?? 0)} ms after)`)
  t.ok(firing.at <= (leased ?? 0) + 1000, 'and soon after it')
  t.equal(await overdueEvents(id), 1, 'one acknowledgement_overdue in the history')
  t.equal(await store.nextDeadlineOf(id), submitted.request.submittedAt + 30_000, 'its entry moved on to the response reminder')

  // The zombie wakes up and finishes what it started: the record says it was done.
  for (const release of held) release()
  await deadStopped
  t.equal(await overdueEvents(id), 1, 'still one acknowledgement_overdue after the zombie ran')
  t.equal(await store.nextDeadlineOf(id), submitted.request.submittedAt + 30_000, 'and the entry is where the live worker left it')
})

t.test('a request that is gone leaves the deadline set when its entry comes up', async (t) => {
  const firer = createDeadlineFirer(service, config)
  await connection.zadd(store.keys.deadlines, Date.now() - 1000, 'no-such-request')
  t.same(await firer.fireDue('no-such-request', Date.now()), [], 'nothing to record')
  t.equal(await store.nextDeadlineOf('no-such-request'), undefined, 'and the stray entry is removed')
})

t.test('forgetting the deadline of a request that is gone leaves a live request\'s entry alone', async (t) => {
  const submitted = await service.submit(sender, { ...mlaBody(), recipient: 'DE-BFJ' } as SubmittedBody)
  t.equal(submitted.kind, 'created', 'submitted')
  const id = submitted.request.id
  const entry = await store.nextDeadlineOf(id)
  t.type(entry, 'number', 'the request has a deadline entry')
  await store.forgetDeadlineIfGone(id)
  t.equal(await store.nextDeadlineOf(id), entry, 'it is still there')
})

t.test('the clock fires nothing early and stops cleanly while idle', async (t) => {
  const submitted = await service.submit(sender, { ...mlaBody(), recipient: 'NL-AIRS' } as SubmittedBody)
  t.equal(submitted.kind, 'created', 'submitted')
  const id = submitted.request.id
  const seen: Array<{ recorded: string[], at: number }> = []
  const clock = new DeadlineClock(store, createDeadlineFirer(service, config), log, { idlePollMs: 10, onFired: (firedId, recorded, at) => { if (firedId === id) seen.push({ recorded, at }) } })
  clock.start()
  await eventually('the acknowledgement to fall overdue', async () => (seen.some((s) => s.recorded.includes('acknowledgement_due')) ? true : undefined), 5000, 10)
  await clock.stop()
  const reminder = seen.find((s) => s.recorded.includes('acknowledgement_reminder'))
  t.ok(reminder !== undefined && reminder.at >= submitted.request.submittedAt + 500, 'the reminder at its time, not before')
  const overdue = seen.find((s) => s.recorded.includes('acknowledgement_due'))!
  t.ok(overdue.at >= submitted.request.ackDue!, 'the overdue acknowledgement at its deadline, not before')
  t.equal(await overdueEvents(id), 1, 'recorded once')
})
