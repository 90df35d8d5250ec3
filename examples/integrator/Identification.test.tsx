// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { afterEach, it } from 'vitest'
import { createPathProvider, MemoryStorage, modelPaths, runPath } from '10npay-identification/testing'
import { Identification } from './Identification.js'

afterEach(cleanup)
const shown = () => screen.queryByLabelText('state')?.textContent ?? '(page loading)'
const button = { START: 'Start', CONTINUE: 'Continue', RETRY: 'Try again', RESTART: 'Restart', CANCEL: 'Cancel' } as const

// Every path a user begins with the Start button: each answer of the provider, each redirect,
// Continue, Try again, Restart, Cancel.
for (const path of modelPaths({ kind: 'simple', from: 'start' })) {
  it(path.name, async () => {
    const provider = createPathProvider(path)
    const { api, userId, userType, clock, polling } = provider
    const options = { api, userId, userType, clock, polling, storage: new MemoryStorage(), lock: false as const, navigate: () => {} }
    let page = render(<Identification options={options} />)
    await runPath(path, provider, {
      async send(event) {
        if (event.type === 'REDIRECT') {
          page.unmount() // the provider sends the browser back to the app: a new page load
          await Promise.resolve()
          page = render(<Identification options={options} redirect={event.outcome} />)
        } else if (event.type !== 'LOST') fireEvent.click(screen.getByRole('button', { name: button[event.type] }))
      },
      state: shown,
      subscribe(listener) {
        const observer = new MutationObserver(() => listener(shown()))
        observer.observe(document.body, { subtree: true, childList: true, characterData: true })
        return () => observer.disconnect()
      },
    })
  })
}
