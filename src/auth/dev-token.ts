import { createSigner } from 'fast-jwt'

/** An HS256 development token signed with AUTH_DEV_SECRET (accepted only where that is set). */
export function mintDevToken (secret: string, claims: { authority: string, roles: string[], sub: string }, ttlSeconds: number): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 })
  return sign(claims)
}
