// The part of autocannon's API the benchmarks use (the package ships no types).
declare module 'autocannon' {
  interface Histogram { average: number, mean: number, stddev: number, min: number, max: number, p50: number, p90: number, p97_5: number, p99: number, [key: string]: number }
  interface Result {
    latency: Histogram
    requests: Histogram & { total: number, sent: number }
    throughput: Histogram
    errors: number
    timeouts: number
    non2xx: number
    duration: number
  }
  // The request a client is about to send, as setupRequest sees and returns it.
  interface RawRequest {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
    [key: string]: unknown
  }
  // One entry of the sequence each connection loops over; its fields override the options'.
  interface Request {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
    // Returning a falsy value restarts from the first request.
    setupRequest?: (request: RawRequest, context: Record<string, unknown>) => RawRequest | null | undefined | false
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void
  }
  interface Options {
    url: string
    connections?: number
    pipelining?: number
    duration?: number
    amount?: number
    method?: string
    headers?: Record<string, string>
    body?: string
    overallRate?: number
    requests?: Request[]
  }
  function autocannon (options: Options): Promise<Result>
  export default autocannon
}
