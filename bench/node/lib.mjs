// Shared loading code for the Node SDK scripts. The document is served to the
// SDK through a stubbed fetch, so it goes through the SDK's own
// local-evaluation path (getEnvironmentFromApi → buildEnvironmentModel, the
// identity-override index) exactly as in production, with no network.
import { readFileSync } from 'node:fs';
import { Flagsmith } from 'flagsmith-nodejs';

export const SDK_VERSION = JSON.parse(
    readFileSync(new URL('./node_modules/flagsmith-nodejs/package.json', import.meta.url), 'utf8')
).version;

// The SDK logs through pino to stdout by default, which would corrupt the
// JSON lines these scripts print.
export const logger = {
    error: (...args) => console.error('flagsmith error:', ...args),
    warn: (...args) => console.error('flagsmith warn:', ...args),
    info() {},
    debug() {},
    trace() {},
    fatal: (...args) => console.error('flagsmith fatal:', ...args),
    child() {
        return logger;
    }
};

export async function loadClient(docPath) {
    const docText = readFileSync(docPath, 'utf8');
    const apiUrl = 'http://document.invalid/api/v1/';
    const client = new Flagsmith({
        // Local evaluation refuses non-server keys; the stub ignores the key.
        environmentKey: 'ser.fledge-bench',
        apiUrl,
        enableLocalEvaluation: true,
        // Polling would refetch (harmlessly) during long runs; an hour is
        // longer than any benchmark, and close() stops it.
        environmentRefreshIntervalSeconds: 3600,
        logger,
        fetch: async url => {
            if (String(url) !== `${apiUrl}environment-document/`) {
                throw new Error(`unexpected SDK request to ${url}`);
            }
            return new Response(docText, {
                status: 200,
                headers: { 'content-type': 'application/json' }
            });
        }
    });
    await client.getEnvironment();
    return client;
}

// identityArgs turns a POST /api/v1/identities/ body into the SDK's
// (identifier, traits) arguments.
export function identityArgs(bodyPath) {
    const body = JSON.parse(readFileSync(bodyPath, 'utf8'));
    const traits = {};
    for (const t of body.traits ?? []) {
        traits[t.trait_key] = t.trait_value;
    }
    return { identifier: body.identifier, traits };
}

export function flagsJSON(flags) {
    const out = {};
    const all = flags.allFlags().slice().sort((a, b) => (a.featureName < b.featureName ? -1 : 1));
    for (const f of all) {
        out[f.featureName] = { enabled: f.enabled, value: f.value ?? null };
    }
    return { flags: out };
}
