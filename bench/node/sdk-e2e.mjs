// Drives the Flagsmith Node SDK against a running fledge proxy, for fledge's
// end-to-end tests (e2e/sdk_test.go). Unlike lib.mjs, nothing is stubbed:
// every request goes over HTTP to fledge.
//
//   node sdk-e2e.mjs BASE_URL CLIENT_KEY SERVER_KEY CASES.json
//
// BASE_URL is fledge's API base (http://127.0.0.1:PORT/api/v1/); CASES.json
// is a list of identity cases [{"identifier": "...", "traits": {"k": v}}].
// Prints one JSON object:
//
//   {"sdk_version": "...",
//    "remote":        {"environment": FLAGS, "identities": [FLAGS, ...]},   // server key
//    "remote_client": {"environment": FLAGS, "identities": [FLAGS, ...]},   // client key
//    "local":         {"environment": FLAGS, "identities": [FLAGS, ...],    // server key, local evaluation
//                      "requests": [{"method", "url", "status"}, ...]}}
//
// where FLAGS is {"flags": {name: {"enabled", "value"}}} and identities are in
// the order of CASES.json. Any SDK error exits non-zero with the error on
// stderr, so a failing request cannot pass as an empty flag set.
import { readFileSync } from 'node:fs';
import { Flagsmith } from 'flagsmith-nodejs';
import { SDK_VERSION, flagsJSON, logger } from './lib.mjs';

const [baseURL, clientKey, serverKey, casesPath] = process.argv.slice(2);
if (!baseURL || !clientKey || !serverKey || !casesPath) {
    console.error('usage: node sdk-e2e.mjs BASE_URL CLIENT_KEY SERVER_KEY CASES.json');
    process.exit(2);
}
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));


// Common options: no retries (a failure must surface at once, not after
// retry delays) and no analytics (its timer would keep node alive).
const common = { apiUrl: baseURL, logger, retries: 0, requestTimeoutSeconds: 5, enableAnalytics: false };

async function evaluateAll(client) {
    const environment = flagsJSON(await client.getEnvironmentFlags());
    const identities = [];
    // Sequential on purpose: the identities are few and the order of the
    // output must match CASES.json.
    for (const c of cases) {
        identities.push(flagsJSON(await client.getIdentityFlags(c.identifier, c.traits ?? {})));
    }
    return { environment, identities };
}

function remoteClient(environmentKey) {
    return new Flagsmith({ ...common, environmentKey, enableLocalEvaluation: false });
}

const out = { sdk_version: SDK_VERSION };
const clients = [];
try {
    const remote = remoteClient(serverKey);
    clients.push(remote);
    out.remote = await evaluateAll(remote);

    const remoteWithClientKey = remoteClient(clientKey);
    clients.push(remoteWithClientKey);
    out.remote_client = await evaluateAll(remoteWithClientKey);

    // Local evaluation: the SDK fetches fledge's /environment-document/
    // (following Link pages, if any) and evaluates in-process. Its requests
    // are recorded so the test can check the document really came from fledge.
    const requests = [];
    const local = new Flagsmith({
        ...common,
        environmentKey: serverKey,
        enableLocalEvaluation: true,
        // No refetch during the run; close() stops the poller.
        environmentRefreshIntervalSeconds: 3600,
        fetch: async (url, init) => {
            const res = await fetch(url, init);
            requests.push({ method: init?.method ?? 'GET', url: String(url), status: res.status });
            return res;
        }
    });
    clients.push(local);
    out.local = { ...(await evaluateAll(local)), requests };
} catch (err) {
    console.error('sdk-e2e:', err, err?.cause ?? '');
    process.exitCode = 1;
} finally {
    await Promise.all(clients.map(c => c.close()));
}
if (!process.exitCode) {
    console.log(JSON.stringify(out));
}
