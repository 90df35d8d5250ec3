/**
 * Whether `p` settled (either way) within `ms` of real time. The timer is cleared once `p`
 * settles; a late outcome of `p` is ignored. For bounded waits on shutdown paths.
 */
export function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer))
}
