// The test receiver itself (tests/helpers/receiver.ts): it must tell a correctly
// signed Standard Webhook from a forged one, answer what it is told to, and go
// down and come back on the same port; otherwise the worker tests prove nothing.
import t from 'tap'
import { request } from 'undici'
import { Webhook } from 'standardwebhooks'
import { Receiver, newWebhookSecret } from '../helpers/receiver.js'

async function send (url: string, secret: string, id: string, body: string): Promise<number> {
  const signature = new Webhook(secret).sign(id, new Date(), body)
  const res = await request(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': signature }
  })
  await res.body.dump()
  return res.statusCode
}

t.test('verifies signatures with the secret of the path, records every attempt', async (t) => {
  const receiver = await Receiver.start(t)
  const hook = receiver.webhook('/a')
  t.match(hook.secret, /^whsec_[A-Za-z0-9+/]+=*$/, 'a Standard Webhooks secret')
  t.equal(hook.url, `${receiver.origin}/a`, 'pointing at the receiver')

  t.equal(await send(hook.url, hook.secret, 'msg_1', '{"type":"x","data":{"requestId":"r1"}}'), 204, 'a correctly signed webhook is accepted')
  t.equal(await send(hook.url, newWebhookSecret(), 'msg_2', '{"type":"x"}'), 401, 'one signed with another secret is rejected')
  t.equal(await send(`${receiver.origin}/unknown`, hook.secret, 'msg_3', '{}'), 401, 'one to a path without a secret is rejected')
  t.same(receiver.deliveries.map((d) => [d.webhookId, d.path, d.verified, d.status]), [['msg_1', '/a', true, 204], ['msg_2', '/a', false, 401], ['msg_3', '/unknown', false, 401]], 'every attempt is recorded')
  t.same(receiver.deliveries[0].body, { type: 'x', data: { requestId: 'r1' } }, 'with its parsed body')
  t.same(receiver.about('r1').map((d) => d.webhookId), ['msg_1'], 'about() finds the deliveries of a request')

  receiver.answer(503)
  t.equal(await send(hook.url, hook.secret, 'msg_4', '{}'), 503, 'it answers the status it is told to')
  receiver.answer((d) => d.webhookId === 'msg_5' ? 410 : 200)
  t.equal(await send(hook.url, hook.secret, 'msg_5', '{}'), 410, 'or the one a rule picks')
  t.equal(await send(hook.url, hook.secret, 'msg_6', '{}'), 200, 'per delivery')
  t.same(receiver.accepted().map((d) => d.webhookId), ['msg_1', 'msg_6'], 'accepted() lists the 2xx ones')
})

t.test('goes down and comes back on the same port; waitFor resolves or times out', async (t) => {
  const receiver = await Receiver.start(t)
  const hook = receiver.webhook('/b')
  const port = receiver.port
  await receiver.down()
  await t.rejects(send(hook.url, hook.secret, 'msg_1', '{}'), { code: 'ECONNREFUSED' }, 'down: the connection is refused')
  await receiver.up()
  t.equal(receiver.port, port, 'back on the same port')
  const waiting = receiver.waitFor((ds) => ds.some((d) => d.webhookId === 'msg_2'), 5000)
  t.equal(await send(hook.url, hook.secret, 'msg_2', '{}'), 204, 'up: accepted again')
  t.equal((await waiting).length, 1, 'waitFor resolves once the predicate holds')
  await t.rejects(receiver.waitFor(() => false, 100, 'nothing'), /timed out after 100 ms waiting for nothing/, 'and rejects after its timeout')

  receiver.delay(300)
  const slow = send(hook.url, hook.secret, 'msg_3', '{}')
  await receiver.waitFor((ds) => ds.some((d) => d.webhookId === 'msg_3'), 5000)
  t.notOk(receiver.deliveries.at(-1)?.answered, 'a slow answer is pending after arrival')
  t.equal(await slow, 204, 'and comes')
  t.ok(receiver.deliveries.at(-1)?.answered, 'answered then')
})
