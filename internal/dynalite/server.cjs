// Starts dynalite (a DynamoDB implementation) for Go tests on a loopback
// port, prints "listening PORT" once ready, and exits when its standard
// input closes, so it never outlives the test process that started it.
//
// Usage: node server.cjs DIR [PORT [DATA]], where DIR/node_modules/dynalite
// is installed (bench/node; `make node-deps`). PORT 0 or absent picks a
// free port; DATA, when given, is a LevelDB directory that keeps the tables
// across restarts (in memory otherwise).
'use strict'
const path = require('path')

const dynalite = require(path.join(process.argv[2], 'node_modules', 'dynalite'))
const port = Number(process.argv[3] || 0)
const options = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }
if (process.argv[4]) options.path = process.argv[4]
const server = dynalite(options)
// dynalite reads request bodies without an 'error' listener, so a client
// that resets its connection mid-request (a context cancelled at the end of
// a benchmark slice, a test's timeout) raised an unhandled ECONNRESET and
// took the whole server down. A reset connection concerns only its request.
server.prependListener('request', (req, res) => {
  req.on('error', () => {})
  res.on('error', () => {})
})
server.on('clientError', (err, socket) => socket.destroy())
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
    process.stderr.write(`dynalite: ignored ${err.code} on a client connection\n`)
    return
  }
  process.stderr.write(`dynalite: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
