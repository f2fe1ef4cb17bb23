package spec

import (
	"testing"

	"github.com/symbridge/symbridge/internal/testshared"
)

// SharedDir is where the official spec files are, relative to ../shared
// beside the repository (a copy of finos/symphony-api-spec, never in the
// repository itself).
const SharedDir = "symphony-api-spec"

// ForTest returns a Validator over the official spec files in
// ../shared/symphony-api-spec, or nil (a Validator that checks nothing)
// when a plain clone has no ../shared: behavioural tests then run the
// simulator unvalidated instead of being skipped. Under CI, which always
// has ../shared, its absence fails the test (testshared.Dir). Tests whose
// point is the comparison with the spec use testshared.Path instead.
func ForTest(t testing.TB) *Validator {
	t.Helper()
	dir, ok := testshared.Dir(t, SharedDir)
	if !ok {
		return nil
	}
	v, err := NewValidator(dir)
	if err != nil {
		t.Fatalf("spec.NewValidator: %v", err)
	}
	return v
}
