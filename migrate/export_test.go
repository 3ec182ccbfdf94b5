package migrate

// DerivedUUID exposes derivedUUID to the tests.
var DerivedUUID = derivedUUID
