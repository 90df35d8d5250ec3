const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

/** A plain page with a Complete and a Fail button, each a form POST. */
export function stepPage(title: string, text: string, completeAction: string, failAction: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}</style>
</head><body>
<h1>${esc(title)}</h1>
<p>${esc(text)}</p>
<form method="post" action="${esc(completeAction)}" style="display:inline"><button id="complete" type="submit">Complete</button></form>
<form method="post" action="${esc(failAction)}" style="display:inline"><button id="fail" type="submit">Fail</button></form>
<p><small>10npay simulator — not the real provider.</small></p>
</body></html>`
}

/** The simulator's own landing page for redirects when no Success/Fail URL is configured. */
export function donePage(outcome: string, step: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(outcome)}</title></head>
<body style="font:16px system-ui,sans-serif;margin:4rem auto;max-width:32rem"><h1>${esc(step)}: ${esc(outcome)}</h1>
<p>The simulator would now redirect to the merchant's ${esc(outcome)} URL.</p></body></html>`
}
