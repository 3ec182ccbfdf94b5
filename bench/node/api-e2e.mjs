// Drives the Flagsmith Node SDK in remote-evaluation mode against a running
// `fledge api`, for e2e/api_clients_test.go: one identity call per run.
//
//   node api-e2e.mjs BASE_URL KEY IDENTIFIER TRAITS_JSON
//
// Prints {"flags": {name: {"enabled", "value"}}} for
// getIdentityFlags(IDENTIFIER, TRAITS). Any SDK error exits non-zero.
import { Flagsmith } from 'flagsmith-nodejs';
import { flagsJSON, logger } from './lib.mjs';

const [apiUrl, environmentKey, identifier, traitsJSON] = process.argv.slice(2);
if (!apiUrl || !environmentKey || !identifier || traitsJSON === undefined) {
    console.error('usage: node api-e2e.mjs BASE_URL KEY IDENTIFIER TRAITS_JSON');
    process.exit(2);
}
const client = new Flagsmith({
    apiUrl, environmentKey, logger, retries: 0, requestTimeoutSeconds: 5,
    enableAnalytics: false, enableLocalEvaluation: false,
});
try {
    const flags = await client.getIdentityFlags(identifier, JSON.parse(traitsJSON));
    console.log(JSON.stringify(flagsJSON(flags)));
} catch (err) {
    console.error(err?.stack ?? String(err));
    process.exitCode = 1;
} finally {
    await client.close?.();
}
