// Times the Flagsmith Node SDK's local-evaluation engine on one document and
// identity request, as the reference point for fledge's engine.
//
//   node engine-bench.mjs DOC.json IDENTITY_BODY.json [--iterations N] [--warmup N]
//
// Prints one JSON line with ns/op for getIdentityFlags and
// getEnvironmentFlags, then one with the identity's flags as a spot check.
// The timed calls are the public SDK calls, so they include the per-call
// document→context mapping the SDK does; that is the cost an SDK user pays.
import { parseArgs } from 'node:util';
import { loadClient, identityArgs, flagsJSON, SDK_VERSION } from './lib.mjs';

const { values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
        iterations: { type: 'string', default: '5000' },
        warmup: { type: 'string', default: '1000' }
    }
});
const [docPath, bodyPath] = positionals;
const iterations = Number.parseInt(opts.iterations, 10);
const warmup = Number.parseInt(opts.warmup, 10);
if (!docPath || !bodyPath || !(iterations > 0) || !(warmup >= 0)) {
    console.error('usage: node engine-bench.mjs DOC.json IDENTITY_BODY.json [--iterations N] [--warmup N]');
    process.exit(2);
}

const client = await loadClient(docPath);
const { identifier, traits } = identityArgs(bodyPath);

// The sink keeps results observable so no call can be optimised away.
let sink = 0;
async function nsPerOp(fn, n) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
        sink += (await fn()).allFlags().length;
    }
    return Number(process.hrtime.bigint() - start) / n;
}

const identity = () => client.getIdentityFlags(identifier, traits);
const environment = () => client.getEnvironmentFlags();

try {
    await nsPerOp(identity, warmup);
    await nsPerOp(environment, warmup);
    const identityNs = await nsPerOp(identity, iterations);
    const environmentNs = await nsPerOp(environment, iterations);
    if (sink === 0) {
        throw new Error('SDK returned no flags');
    }
    console.log(
        JSON.stringify({
            sdk: 'flagsmith-nodejs',
            version: SDK_VERSION,
            identity_ns_per_op: Math.round(identityNs),
            environment_ns_per_op: Math.round(environmentNs),
            iterations
        })
    );
    console.log(JSON.stringify(flagsJSON(await identity())));
} finally {
    await client.close();
}
