//go:build knowngaps

package e2e

import "testing"

// TestSwapBackFedoraHostNoHelperLeft reproduces a known gap of issue 13
// (docs/lifecycle.md, "Known gaps"): when our package is the only one
// that ships the helper and the swap back erases it, no guard runs, and
// systemd's flush takes the administrator's entry. It fails today; run
// it with go test -tags knowngaps ./pkg/e2e.
func TestSwapBackFedoraHostNoHelperLeft(t *testing.T) { swapBack(t, true, false) }
