package environment_test

import "path/filepath"

// fixtures holds real environment documents and API responses shared with
// the repository (from the Flagsmith SDKs' own test data).
var fixtures = filepath.Join("..", "..", "shared", "fixtures", "environment-documents")
