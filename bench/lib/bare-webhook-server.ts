// The end-to-end benchmark's baseline: a bare Fastify route that accepts the
// same POST /v1/requests and posts the same signed webhook (the gateway's own
// webhookPayload and Standard Webhooks signing, undici) straight to the
// receiver, with no schema validation, no auth, no Redis and no queue. What
// the gateway adds on top of "HTTP in, HTTP out" on this machine is the
// difference.
//
//   PORT=... WEBHOOK_URL=http://127.0.0.1:N/hooks/de-bfj WEBHOOK_SECRET=whsec_... \
//     node --import tsx bench/lib/bare-webhook-server.ts
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { Webhook } from 'standardwebhooks'
import { Agent, request } from 'undici'
import { webhookPayload } from '../../workers/delivery.js'

const port = Number(process.env.PORT)
const url = process.env.WEBHOOK_URL ?? ''
const webhook = new Webhook(process.env.WEBHOOK_SECRET ?? '')
// The gateway's worker posts through undici's global dispatcher with 50 jobs in flight; the same here.
const dispatcher = new Agent({ connections: 50 })

async function deliver (id: string, body: { type?: string, recipient?: string }): Promise<void> {
  const at = new Date()
  const eventId = `${Date.now()}-0`
  const payload = webhookPayload(eventId, {
    type: 'request.submitted',
    at: at.toISOString(),
    requestId: id,
    requestType: body.type === 'repatriation' ? 'repatriation' : 'mla',
    sender: 'TR-MOJ',
    recipient: body.recipient ?? 'DE-BFJ',
    actor: { authority: 'TR-MOJ', subject: 'bench' },
    data: { status: 'submitted' }
  })
  const messageId = `msg_${eventId}_${id}`
  const res = await request(url, {
    method: 'POST',
    body: payload,
    dispatcher,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Rogatory-Webhooks/1',
      'webhook-id': messageId,
      // The signed timestamp and the header must be the same second.
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': webhook.sign(messageId, at, payload)
    }
  })
  await res.body.dump()
}

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
app.get('/healthz', async () => ({ ok: true }))
app.post<{ Body: { type?: string, recipient?: string } }>('/v1/requests', async (req, reply) => {
  const id = randomUUID()
  reply.header('location', `/v1/requests/${id}`).code(201).send({ id })
  setImmediate(() => { deliver(id, req.body).catch((error: unknown) => { process.stderr.write(`bare delivery failed: ${String(error)}\n`) }) })
  return reply
})
await app.listen({ port, host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
