// Plain domain types shared by the core, the store and the workers. No I/O here.

export type RequestType = 'mla' | 'repatriation'

export type Role = 'agency' | 'liaison' | 'auditor' | 'admin'

export type RequestStatus =
  | 'submitted'
  | 'delivered'
  | 'acknowledged'
  | 'clarification_requested'
  | 'partially_executed'
  | 'executed'
  | 'refused'
  | 'withdrawn'
  | 'deemed_accepted'

export const openStatuses: readonly RequestStatus[] = [
  'submitted',
  'delivered',
  'acknowledged',
  'clarification_requested',
  'partially_executed'
]

export type OnSilence = 'stays_overdue' | 'deemed_accepted'

export type LegalBasis =
  | 'eio-directive-2014-41'
  | 'coe-1959-convention'
  | 'bilateral-mla-treaty'
  | 'eu-readmission-agreement'
  | 'accelerated-readmission'

/** An agreement as configured: clocks are ISO 8601 durations. */
export interface Agreement {
  id: string
  /** Two authority ids, or one authority id and '*' for every partner. */
  parties: [string, string]
  requestType: RequestType
  legalBasis: LegalBasis
  title: string
  /** Absent when the instrument sets no acknowledgement step (accelerated readmission). */
  acknowledgeWithin?: string
  respondWithin: string
  /** How far beyond the original response deadline an extension may go; absent = no extension. */
  extensionMax?: string
  onSilence: OnSilence
  /** Repatriation of a person in custody: answer this long before the release date. */
  custodyLeadTime?: string
  /** Reminders go out at this fraction of each clock (0 < f < 1). */
  reminderAtFraction: number
}

export interface AuthorityKey {
  kid: string
  alg: 'ES256' | 'RS256'
  /** Public key as a JWK object. */
  publicKeyJwk: Record<string, unknown>
}

export interface AuthorityWebhook {
  url: string
  /** Standard Webhooks secret, "whsec_" + base64. */
  secret: string
  /** Delays between attempts, in seconds; the first entry is the delay of the first attempt. */
  retryScheduleSeconds: number[]
  timeoutMs: number
}

export interface Authority {
  id: string
  name: string
  /** ISO 3166-1 alpha-2 */
  country: string
  keys: AuthorityKey[]
  webhook?: AuthorityWebhook
  /** Gateway-wide oversight: its auditors see the audit log and reports of every pair. */
  oversight?: boolean
  /** Requests per window for all of this authority's tokens together; absent = the gateway default (600 per 60 s). */
  rateLimit?: AuthorityRateLimit
}

export interface AuthorityRateLimit {
  max: number
  timeWindowSeconds: number
}

export interface GatewayConfig {
  authorities: Authority[]
  agreements: Agreement[]
}

export interface Deadlines {
  /** ISO timestamps; acknowledgement absent when the agreement has no such clock. */
  acknowledgement?: string
  response: string
}
