// The reference for the bundle-size benchmark: the identification loop as integrators write it
// by hand, without states, persistence, URL checks or error taxonomy (about 40 lines).
export async function identifyByHand(base: string, token: string, userId: number, open: (url: string) => Promise<boolean>) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}/Enrollment/${path}`, { method: 'POST', headers, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`${path}: ${res.status}`)
    return res.json()
  }
  const poll = async (until: string) => {
    const started = Date.now()
    while (Date.now() - started < 120_000) {
      const res = await fetch(`${base}/Enrollment/${userId}/0/true/get-identification-process-status`, { headers })
      if (res.ok) {
        const body = await res.json()
        const status = String(body.videoIdentificationStatus ?? '').toUpperCase()
        if (status === until) return body
        if (status === 'ERROR') throw new Error('vendor error')
      }
      await new Promise((r) => setTimeout(r, 2000))
    }
    throw new Error('timeout')
  }
  const init = await post('initiate-external-identification', { userId, isRestartIdentification: false })
  if (!(await open(init.videoIdentificationUrl))) throw new Error('identification failed')
  const a = await poll('SIGN_SESSION_ID_SUCCESSFULLY_CREATED')
  if (!(await open(a.videoIdentificationUrl))) throw new Error('signing failed')
  await poll('DOCUMENT_SIGN_SUCCESS')
  for (let i = 0; i < 10; i++) {
    try {
      return await post('finalize-external-identification', { userId, bTrustAppCallBackId: null })
    } catch {
      await new Promise((r) => setTimeout(r, 2000))
    }
  }
  throw new Error('finalize failed')
}
