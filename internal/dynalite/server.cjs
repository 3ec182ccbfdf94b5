// Starts dynalite (an in-memory DynamoDB) for Go tests on a free loopback
// port, prints "listening PORT" once ready, and exits when its standard
// input closes, so it never outlives the test process that started it.
//
// Usage: node server.cjs DIR, where DIR/node_modules/dynalite is installed
// (bench/node; `make node-deps`).
'use strict'
const path = require('path')

const dynalite = require(path.join(process.argv[2], 'node_modules', 'dynalite'))
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
