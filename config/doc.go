// Package config loads and validates the proxy configuration the way
// Flagsmith's Python edge-proxy does, so an existing deployment's
// config.json and environment variables keep working unchanged when the
// Python proxy is swapped for Fledge, plus Fledge's own additions.
//
// # Sources and precedence
//
// Settings come from, lowest priority first: built-in defaults, one JSON
// file (see [ResolvePath]), then environment variables. This mirrors the
// Python proxy's pydantic-settings sources (init > env > JSON file).
//
// Environment variable names are the setting names matched
// case-insensitively (API_URL or api_url); aliases work too
// (API_POLL_FREQUENCY). Only top-level settings have variables: there is
// no SERVER_PORT-style nesting, because the Python proxy sets no nested
// delimiter and Kubernetes injects <SERVICE>_PORT variables that would
// otherwise be picked up by accident. Values are decoded by the target
// setting's type:
//
//   - objects and lists of objects (ENVIRONMENT_KEY_PAIRS, LOGGING, SERVER,
//     ENDPOINT_CACHES, HEALTH_CHECK) must be JSON;
//   - numbers and booleans are parsed as JSON when they parse, else taken as
//     strings and coerced as pydantic's lax mode does ("8000", "yes");
//   - strings (API_URL, SNAPSHOT_DIR) are taken verbatim;
//   - string lists (ALLOW_ORIGINS, ENVIRONMENTS, FORWARDED_ALLOW_IPS) are
//     JSON when the value starts with "[", else comma-separated, which is
//     how uvicorn reads FORWARDED_ALLOW_IPS.
//
// Merging follows pydantic-settings' deep_update: a JSON object from the
// environment is merged key by key into the file's object (LOGGING='{"log_level":"DEBUG"}'
// keeps the file's log_format), while lists and scalars replace. Within one
// object the canonical name beats its alias (api_poll_frequency_seconds
// over api_poll_frequency); across sources the environment always wins,
// whichever spelling each source used.
//
// Type errors are judged on the merged result, as pydantic validates after
// merging: a wrong-typed file value that the environment overrides is not
// an error.
//
// WEB_CONCURRENCY and FORWARDED_ALLOW_IPS are read by uvicorn in the Python
// proxy; here they are ordinary settings (web_concurrency,
// forwarded_allow_ips) so they also work from the file. HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY need nothing from this package: net/http's
// default transport honours them for upstream requests.
//
// Keys the Python proxy would ignore (unknown or Python-only, such as
// server.reload or logging.log_filename) are ignored here too, and listed
// in [Config.Unknown] so the caller can warn about them.
package config
