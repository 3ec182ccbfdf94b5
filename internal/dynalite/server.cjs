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
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
