// Prints the flags the Flagsmith Node SDK computes for one identity request,
// for comparison tests against fledge's engine.
//
//   node eval-flags.mjs DOC.json IDENTITY_BODY.json
import { loadClient, identityArgs, flagsJSON } from './lib.mjs';

const [docPath, bodyPath] = process.argv.slice(2);
if (!docPath || !bodyPath) {
    console.error('usage: node eval-flags.mjs DOC.json IDENTITY_BODY.json');
    process.exit(2);
}
const client = await loadClient(docPath);
try {
    const { identifier, traits } = identityArgs(bodyPath);
    const flags = await client.getIdentityFlags(identifier, traits);
    console.log(JSON.stringify(flagsJSON(flags)));
} finally {
    await client.close();
}
