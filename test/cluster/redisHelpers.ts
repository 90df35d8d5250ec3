/**
 * Redis for the cluster suites, the e2e cluster test and the cluster benchmark: the one place
 * that deletes a deployment's keys (its prefix, and only that).
 */
import { Redis } from 'ioredis'

export const REDIS_URL = process.env['TENPAY_REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/**
 * Deletes every key under `${prefix}:` (a deployment's keys, as the BullMQ coordinator names
 * them) and answers how many there were. The scan is bounded: at most 100 000 rounds.
 */
export async function deleteRedisPrefix(prefix: string, url = REDIS_URL): Promise<number> {
  if (!/^[\w-]{8,}$/.test(prefix)) throw new Error(`refusing to delete the keys of prefix ${JSON.stringify(prefix)}`)
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    let deleted = 0
    let cursor = '0'
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length) deleted += await redis.del(...keys)
      if (cursor === '0') break
    }
    return deleted
  } finally {
    redis.disconnect()
  }
}
