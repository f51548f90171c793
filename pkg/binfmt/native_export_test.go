package binfmt

// BuiltFor exposes builtFor to the tests.
var BuiltFor = builtFor
