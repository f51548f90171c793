package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// TestStoreRefusesForeignRecord checks issue 16's point 10: a record
// owned by another user, or writable by group or others, is refused by
// the Go side as the shell %postun refuses it, and the error wraps
// ErrUnsafeState as its doc comment says.
func TestStoreRefusesForeignRecord(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	c := Claims{}
	c.Add(mustEntry(t, ":a:M::\\x7fAA::/bin/a:F"))
	for _, tc := range []struct {
		name   string
		spoil  func(p string) error
		reason string
	}{
		{"owned by uid 1000", func(p string) error { return os.Chown(p, 1000, 1000) }, "owned by uid 1000, not root"},
		{"mode 0666", func(p string) error { return os.Chmod(p, 0o666) }, "writable by group or others (mode 0666)"},
		{"mode 0620", func(p string) error { return os.Chmod(p, 0o620) }, "writable by group or others (mode 0620)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
			if err := s.Save("pkg", c); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(filepath.Join(s.Dir, "pkg")); err != nil {
				t.Fatal(err)
			}
			got, err := s.Claims("pkg")
			if !errors.Is(err, ErrUnsafeState) || !strings.Contains(err.Error(), tc.reason) || got != nil {
				t.Errorf("Claims of a record %s: %v, %v; want no claims and ErrUnsafeState saying %q", tc.name, got, err, tc.reason)
			}
		})
	}
}

// TestStoreFIFO checks issue 16's point 9, the record side: a FIFO in
// place of the record or of the lock file is refused at once instead of
// blocking the reader until someone writes to it.
func TestStoreFIFO(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(s.Dir, "pkg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(s.Dir+".lock", 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		_, err := s.Claims("pkg")
		done <- err
	}()
	go func() {
		_, err := s.Lock()
		done <- err
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, ErrUnsafeState) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("reading a FIFO: %v, want ErrUnsafeState: not a regular file", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO in place of the record or the lock blocks")
		}
	}
}

// TestStoreLargeRecord checks issue 16's point 6: what Save writes, Claims
// reads back (2,000 entries with 128-byte magics and masks make a record of
// about 1.2 MB, over the old 1 MiB read limit), and a record that could not be
// read back is refused at write time, leaving the old one.
func TestStoreLargeRecord(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
	c := largeClaims(t, 2000)
	if err := s.Save("pkg", c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2,000 entries with 128-byte magics: a record of %d bytes", fi.Size())
	if fi.Size() <= 1<<20 {
		t.Fatalf("the record is %d bytes; the test wants one over 1 MiB", fi.Size())
	}
	got, err := s.Claims("pkg")
	if err != nil || len(got) != 2000 {
		t.Fatalf("reading the record back: %d claims, %v", len(got), err)
	}
	defer func(old int64) { MaxRecordSize = old }(MaxRecordSize)
	MaxRecordSize = fi.Size() - 1
	err = s.Save("pkg", largeClaims(t, 2001))
	if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), "2001 entries") {
		t.Fatalf("saving a record over the limit: %v, want ErrRecordTooLarge naming the entries", err)
	}
	MaxRecordSize = fi.Size()
	if got, err := s.Claims("pkg"); err != nil || len(got) != 2000 {
		t.Fatalf("the old record after a refused save: %d claims, %v", len(got), err)
	}
}

// largeClaims returns n claims with 128-byte magics and masks.
func largeClaims(t testing.TB, n int) Claims {
	c := Claims{}
	for _, l := range LargeLines(n) {
		c.Add(mustEntry(t, l))
	}
	return c
}
