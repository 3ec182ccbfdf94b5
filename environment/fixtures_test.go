package environment_test

import "path/filepath"

// fixtures holds real environment documents and API responses from the
// Flagsmith Node SDK's test data, kept in the repository (testdata/README.md).
var fixtures = filepath.Join("..", "testdata", "fixtures", "environment-documents")
