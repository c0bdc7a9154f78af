import type { Role } from './types.js'

/** Who is calling, as established by a verified token. */
export interface Principal {
  authority: string
  roles: Role[]
  subject: string
  /** The authority is registered for gateway-wide oversight. */
  oversight?: boolean
}

export interface Parties {
  sender: string
  recipient: string
}

export type Side = 'sender' | 'recipient'

export function sideOf (principal: Principal, parties: Parties): Side | undefined {
  if (principal.authority === parties.sender) return 'sender'
  if (principal.authority === parties.recipient) return 'recipient'
  return undefined
}

const hasAny = (principal: Principal, roles: Role[]): boolean => principal.roles.some((role) => roles.includes(role))

/** Only agencies act on requests: submit, acknowledge, answer, withdraw. */
export const mayActOnRequests = (principal: Principal): boolean => hasAny(principal, ['agency'])

/** Inbox and outbox are for the people who work the cases. */
export const mayListBoxes = (principal: Principal): boolean => hasAny(principal, ['agency', 'liaison'])

/**
 * How much of one request a principal may see.
 * - 'forbidden': the role never reads requests (403, whatever the request);
 * - 'hidden': not a party, so the request does not exist for them (404);
 * - 'metadata': auditors of a party: ids, parties, timestamps, status, no payload;
 * - 'full': agency and liaison officers of a party.
 */
export type ReadAccess = 'forbidden' | 'hidden' | 'metadata' | 'full'

export function readAccess (principal: Principal, parties: Parties): ReadAccess {
  if (!hasAny(principal, ['agency', 'liaison', 'auditor'])) return 'forbidden'
  if (sideOf(principal, parties) === undefined) return 'hidden'
  return hasAny(principal, ['agency', 'liaison']) ? 'full' : 'metadata'
}

/** A request's history is metadata: parties' agencies, liaison officers and auditors see it. */
export const mayReadEvents = (principal: Principal): boolean => hasAny(principal, ['agency', 'liaison', 'auditor'])

/** The audit log (and its disclosure records) is for auditors. */
export const mayReadAudit = (principal: Principal): boolean => hasAny(principal, ['auditor'])

/** Turnaround figures are for auditors and liaison officers. */
export const mayReadReports = (principal: Principal): boolean => hasAny(principal, ['auditor', 'liaison'])

/**
 * Whose pairs a principal sees in the audit log and the reports: their own
 * authority's, or every pair for auditors of an oversight authority (undefined).
 */
export function oversightScope (principal: Principal): string | undefined {
  return principal.oversight === true && hasAny(principal, ['auditor']) ? undefined : principal.authority
}
