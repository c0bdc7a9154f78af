import { createPublicKey } from 'node:crypto'
import jwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Principal } from '../domain/permissions.js'
import type { GatewayConfig, Role } from '../domain/types.js'
import { problem } from '../http/problem.js'

export interface TokenClaims {
  authority: string
  roles: Role[]
  sub: string
  exp: number
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: TokenClaims
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
  interface FastifyInstance {
    /** preHandler: verifies the bearer token and sets request.principal, or answers 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** The claims of the request's bearer token once verified (cached per token); throws as jwtVerify does. */
    verifiedClaims: (request: FastifyRequest) => Promise<TokenClaims>
    /** The claims if the request's token is in the verification cache (and not expired), without verifying anything. */
    cachedClaims: (request: FastifyRequest) => TokenClaims | undefined
  }
  interface FastifyRequest {
    /** Set by verifiedClaims: a request's token is verified once even if the rate limiter and the route both ask. */
    claimsPromise: Promise<TokenClaims> | null
  }
}

export interface AuthOptions {
  gatewayConfig: GatewayConfig
  /** HS256 development tokens are accepted only when this is set. */
  devSecret?: string
}

const knownRoles: readonly Role[] = ['agency', 'liaison', 'auditor', 'admin']
/** Verified tokens kept (a partner system reuses its token for many requests). */
const verifiedCacheSize = 10_000
/** A cached verification is redone after this long, as fast-jwt's own cache does. */
const verifiedCacheTtlMs = 10 * 60_000
const devKeyIds = new Set([undefined, 'dev'])

interface PinnedKey {
  alg: string
  pem: string
}

interface DecodedToken {
  header: { alg?: string, kid?: string }
  payload: Partial<TokenClaims> | null
}

/**
 * Each authority's tokens are checked with that authority's own registered keys,
 * chosen by kid, and each key accepts only its registered algorithm: a token
 * cannot pick HS256 and use a public key as its HMAC secret.
 */
async function authPlugin (fastify: FastifyInstance, opts: AuthOptions): Promise<void> {
  const pinned = new Map<string, PinnedKey>()
  const authorities = new Set<string>()
  const oversight = new Set<string>()
  for (const authority of opts.gatewayConfig.authorities) {
    authorities.add(authority.id)
    if (authority.oversight === true) oversight.add(authority.id)
    for (const key of authority.keys) {
      const pem = createPublicKey({ key: key.publicKeyJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
      pinned.set(`${authority.id}\u0000${key.kid}`, { alg: key.alg, pem })
    }
  }

  await fastify.register(jwt, {
    secret: async (_request: FastifyRequest, token: unknown) => {
      const { header, payload } = token as DecodedToken
      if (opts.devSecret !== undefined && header.alg === 'HS256' && devKeyIds.has(header.kid)) return opts.devSecret
      const authority = typeof payload?.authority === 'string' ? payload.authority : ''
      const key = header.kid === undefined ? undefined : pinned.get(`${authority}\u0000${header.kid}`)
      if (key === undefined || key.alg !== header.alg) throw problem(401, 'The token is not signed with a key registered for its authority.')
      return key.pem
    },
    decode: { complete: true },
    verify: { requiredClaims: ['exp', 'authority', 'roles', 'sub'], cache: 2000 }
  })

  // Verified tokens by their Authorization header, bounded, each until its exp
  // (checked on every use) or the TTL, whichever is first. @fastify/jwt's path
  // decodes the token and hashes it for fast-jwt's cache on every call. Keys
  // are fixed for the life of this plugin (see `pinned`), so a cached token
  // cannot outlive its key.
  const verified = new Map<string, { claims: TokenClaims, until: number }>()
  function cached (request: FastifyRequest): TokenClaims | undefined {
    const header = request.headers.authorization
    if (typeof header !== 'string') return undefined
    const hit = verified.get(header)
    if (hit === undefined) return undefined
    if (Date.now() < hit.until) return hit.claims
    verified.delete(header)
    return undefined
  }
  async function verify (request: FastifyRequest): Promise<TokenClaims> {
    const hit = cached(request)
    if (hit !== undefined) return hit
    const header = request.headers.authorization
    const claims = await request.jwtVerify<TokenClaims>()
    if (typeof header === 'string' && typeof claims.exp === 'number') {
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value as string)
      verified.set(header, { claims, until: Math.min(claims.exp * 1000, Date.now() + verifiedCacheTtlMs) })
    }
    return claims
  }

  fastify.decorateRequest('claimsPromise', null)
  fastify.decorate('verifiedClaims', (request: FastifyRequest) => (request.claimsPromise ??= verify(request)))
  fastify.decorate('cachedClaims', cached)

  fastify.decorateRequest('principal', null as unknown as Principal)
  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    let claims: TokenClaims
    try {
      claims = cached(request) ?? await fastify.verifiedClaims(request)
    } catch (error) {
      if (error instanceof Error && 'problem' in error) throw error
      const expired = (error as { code?: string }).code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'
      const missing = (error as { code?: string }).code === 'FST_JWT_NO_AUTHORIZATION_IN_HEADER'
      throw problem(401, missing ? 'A bearer token is required.' : expired ? 'The token has expired.' : 'The token is not valid.')
    }
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((role): role is Role => knownRoles.includes(role)) : []
    if (typeof claims.authority !== 'string' || !authorities.has(claims.authority)) throw problem(401, 'The token names no registered authority.')
    if (roles.length === 0) throw problem(401, 'The token grants no known role.')
    if (typeof claims.sub !== 'string' || claims.sub === '') throw problem(401, 'The token has no subject.')
    request.principal = { authority: claims.authority, roles, subject: claims.sub, oversight: oversight.has(claims.authority) }
  })
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x' })
