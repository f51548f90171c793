package lifecycle

import "testing"

// TestNameOfRefusesWhatRPMCannotWrite checks that a NEVRA whose version or
// release holds characters rpm never allows there (rpmbuild accepts
// letters, digits and ._+~^ plus an epoch's colon) is refused, so a
// mangled argument such as "pkg-1.0-1'; rm -rf /; '" cannot pass for an
// erase of pkg.
func TestNameOfRefusesWhatRPMCannotWrite(t *testing.T) {
	for _, ok := range []string{"pkg-1.0-1", "pkg-1:2.0~rc1^git3-1.fc40.x86_64", "a+b-1_2-3"} {
		if _, err := NameOf(ok); err != nil {
			t.Errorf("NameOf(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"pkg-s-1.0-1'; touch /tmp/pwned; '",
		"pkg-s-1.0-1 && touch /tmp/pwned",
		"pkg-s-$(id)-1",
		"pkg-s-1.0-`id`",
		"pkg-s-1.0-",
		"pkg-s--1",
		"pkg-s-1.0-1\n",
	} {
		if got, err := NameOf(bad); err == nil {
			t.Errorf("NameOf(%q) = %q, want an error", bad, got)
		}
	}
}
