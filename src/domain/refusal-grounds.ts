import type { LegalBasis, RequestType } from './types.js'

/** Grounds for refusal, per instrument; a refusal names at least one and may add free text. */
export const refusalGrounds: Record<string, readonly string[]> = {
  // Directive 2014/41/EU, Art. 11(1)
  eio: [
    'immunity_or_privilege', 'national_security', 'ne_bis_in_idem', 'territoriality', 'fundamental_rights',
    'double_criminality', 'measure_not_available', 'measure_restricted_to_offence_list', 'not_criminal_proceedings'
  ],
  // European Convention on Mutual Assistance in Criminal Matters (1959), Art. 2
  mla1959: ['political_offence', 'fiscal_offence', 'essential_interests', 'ne_bis_in_idem', 'double_criminality', 'other_treaty_ground'],
  repatriation: ['non_refoulement', 'nationality_not_established', 'citizenship_revoked', 'identity_not_established', 'other_legal_obstacle']
}

export function refusalCatalogue (type: RequestType, legalBasis: LegalBasis | string): readonly string[] {
  if (type === 'repatriation') return refusalGrounds.repatriation
  return legalBasis === 'eio-directive-2014-41' ? refusalGrounds.eio : refusalGrounds.mla1959
}

export const allRefusalGrounds: readonly string[] = [...new Set(Object.values(refusalGrounds).flat())]
