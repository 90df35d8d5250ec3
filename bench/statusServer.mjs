// A minimal node:http server that answers every request with PROCESSING (benchmark 1b).
import { createServer } from 'node:http'

const body = JSON.stringify({ videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null })
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }))
process.on('disconnect', () => server.close(() => process.exit(0)))
