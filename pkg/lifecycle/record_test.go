package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// TestParseRecordLineStarts checks that only a line starting with "== "
// starts a claim. Entry names and interpreters may contain "== "; reading
// those as claim starts once made a record claim an entry called "name"
// for "odd== name", and lose the claim of an interpreter "/opt/a== b/x".
func TestParseRecordLineStarts(t *testing.T) {
	for _, line := range []string{
		":odd== name:E::x::/bin/sh:",
		":o:E::x::/opt/a== b/interp:",
		":p:M::\\x3d\\x3d\\x20::/opt/==/x:F",
		":q:E::== ::/bin/sh:",
	} {
		e := mustEntry(t, line)
		c := Claims{}
		c.Add(e)
		c.Add(mustEntry(t, ":after:E::y::/bin/sh:"))
		got, err := ParseRecord(c.Render())
		if err != nil || len(got) != 2 || len(got[e.Name]) != 1 || !binfmt.SameDefinition(got[e.Name][0], e) {
			t.Errorf("record of %q reads back as %v, %v\n%s", line, got, err, c.Render())
		}
	}
}

// TestParseRecordCutInALine checks that a claim whose last line is cut
// short is refused, not read as a shorter magic or mask.
func TestParseRecordCutInALine(t *testing.T) {
	c := Claims{}
	c.Add(mustEntry(t, ":a:M::\\x7fELF\\x02::/bin/a:F"))
	data := string(c.Render())
	cut := strings.TrimSuffix(data, "\n")
	cut = cut[:len(cut)-2] // "magic 7f454c4602" loses its last byte
	got, err := ParseRecord([]byte(cut))
	if !errors.Is(err, ErrBadRecord) || len(got) != 0 {
		t.Fatalf("record cut inside its last line reads as %v, %v", got, err)
	}
}

// TestStoreRefusesForeignOwner checks that a state directory owned by
// someone other than root (or the user running the helper) is refused: its
// owner could plant records that make root unregister entries.
func TestStoreRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
	c := Claims{}
	c.Add(mustEntry(t, ":a:M::\\x7fAA::/bin/a:F"))
	if err := s.Save("pkg", c); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(s.Dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claims("pkg"); !errors.Is(err, ErrUnsafeState) || !strings.Contains(err.Error(), "owned by uid 1000") {
		t.Errorf("Claims in a directory owned by uid 1000: %v, want ErrUnsafeState", err)
	}
	if err := s.Save("pkg", c); !errors.Is(err, ErrUnsafeState) {
		t.Errorf("Save in a directory owned by uid 1000: %v, want ErrUnsafeState", err)
	}
	if _, err := s.Packages(); !errors.Is(err, ErrUnsafeState) {
		t.Errorf("Packages in a directory owned by uid 1000: %v, want ErrUnsafeState", err)
	}
}

// FuzzRecordRoundTrip checks that every entry the parser accepts survives
// the record: rendered, then read back, it is the same definition under
// the same name, and the record is not reported damaged.
func FuzzRecordRoundTrip(f *testing.F) {
	for _, s := range []string{
		":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff:/usr/bin/qemu-aarch64-static:OCF",
		"|ext|E||tdx||/usr/libexec/x/interp|",
		":odd== name:E::x::/bin/sh:",
		":o:M:3:== :\\xff\\xff\\xff:/opt/a== b/interp:P",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := binfmt.ParseLine(line)
		if err != nil {
			return
		}
		c := Claims{}
		c.Add(e)
		got, err := ParseRecord(c.Render())
		if err != nil {
			t.Fatalf("the record of %q does not read back: %v\n%s", line, err, c.Render())
		}
		if len(got) != 1 || len(got[e.Name]) != 1 || !binfmt.SameDefinition(got[e.Name][0], e) {
			t.Fatalf("the record of %q reads back as %+v\n%s", line, got, c.Render())
		}
	})
}
