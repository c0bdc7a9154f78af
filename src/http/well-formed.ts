import { problem } from './problem.js'

const maxDepth = 64

// String.prototype.isWellFormed (Node 20) is newer than the ES2022 lib this project compiles against.
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed: () => boolean }).isWellFormed()

/** The JSON pointer of the first string holding a lone UTF-16 surrogate, which Redis would store as U+FFFD. */
export function illFormedStringPointer (value: unknown, pointer = '', depth = 0): string | undefined {
  if (typeof value === 'string') return isWellFormed(value) ? undefined : pointer === '' ? '/' : pointer
  if (value === null || typeof value !== 'object' || depth > maxDepth) return undefined
  for (const [key, item] of Object.entries(value)) {
    const keyPointer = `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`
    if (!isWellFormed(key)) return keyPointer
    const found = illFormedStringPointer(item, keyPointer, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/** Whether every string and key is well-formed: the common case, checked without building pointers. */
function allWellFormed (value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return isWellFormed(value)
  if (value === null || typeof value !== 'object' || depth > maxDepth) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!allWellFormed(value[i], depth + 1)) return false
    return true
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    if (!isWellFormed(key) || !allWellFormed((value as Record<string, unknown>)[key], depth + 1)) return false
  }
  return true
}

/** preValidation hook: text must be well-formed Unicode, or two different values could be stored as one. */
export async function rejectIllFormedStrings (request: { body: unknown }): Promise<void> {
  if (allWellFormed(request.body)) return
  const pointer = illFormedStringPointer(request.body)
  if (pointer !== undefined) {
    throw problem(400, 'The request body contains text that is not well-formed Unicode (a lone surrogate).', { errors: [{ pointer, detail: 'is not well-formed Unicode' }] })
  }
}
