import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Ajv2020 } from 'ajv/dist/2020.js'
import formatsModule from 'ajv-formats'
import { createAjv } from '../schemas/registry.js'

const addFormats = ((formatsModule as unknown as { default?: unknown }).default ?? formatsModule) as typeof formatsModule.default

/**
 * Bodies are checked by the strict Ajv that knows schemas/ (no coercion, no
 * defaults: what is stored is what was sent); params, query and headers by one
 * that coerces strings, as HTTP delivers them.
 */
async function validationPlugin (fastify: FastifyInstance): Promise<void> {
  const bodies = createAjv()
  const parts = new Ajv2020({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: true, strict: true })
  addFormats(parts)
  fastify.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodies : parts
    return ajv.compile(schema)
  })
}

export default fp(validationPlugin, { name: 'validation', fastify: '5.x' })
