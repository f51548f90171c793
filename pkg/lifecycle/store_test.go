package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

func mustEntry(t testing.TB, s string) binfmt.Entry {
	t.Helper()
	e, err := binfmt.ParseLine(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestStoreClaims(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
	a1 := mustEntry(t, ":a:M::\\x7fAA::/bin/a:F")
	a2 := mustEntry(t, ":a:M::\\x7fAB::/bin/a:F")
	b := mustEntry(t, ":b:E::bee::/bin/b:")

	c, err := s.Claims("pkg")
	if err != nil || len(c) != 0 {
		t.Fatalf("empty store: %v %v", c, err)
	}
	for _, e := range []binfmt.Entry{a1, a2, b, a1} {
		if err := s.AddClaim("pkg", e); err != nil {
			t.Fatal(err)
		}
	}
	c, err = s.Claims("pkg")
	if err != nil {
		t.Fatal(err)
	}
	if len(c["a"]) != 2 || len(c["b"]) != 1 {
		t.Fatalf("claims = %+v", c)
	}
	if !c.Owns(binfmt.Live{Entry: a2}) || !c.Owns(binfmt.Live{Entry: b, Enabled: false}) {
		t.Fatal("claims do not own their entries")
	}
	other := mustEntry(t, ":a:M::\\x7fAC::/bin/a:F")
	if c.Owns(binfmt.Live{Entry: other}) {
		t.Fatal("claims own a different definition")
	}
	if err := s.DropClaims("pkg", "a", &a2); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Claims("pkg")
	if len(c["a"]) != 1 || !binfmt.SameDefinition(c["a"][0], a2) {
		t.Fatalf("after keeping a2: %+v", c["a"])
	}
	for _, n := range []string{"a", "b"} {
		if err := s.DropClaims("pkg", n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir left behind after the last claim: %v", err)
	}
}

func TestStoreRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "binfmtctl")}
	if err := os.Symlink(elsewhere, s.Dir); err != nil {
		t.Fatal(err)
	}
	e := mustEntry(t, ":a:M::\\x7fAA::/bin/a:F")
	if err := s.AddClaim("pkg", e); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("AddClaim through a symlinked state dir: %v, want ErrUnsafeState", err)
	}
	if _, err := s.Claims("pkg"); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Claims through a symlinked state dir: %v, want ErrUnsafeState", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("wrote through the symlink: %v", ents)
	}

	// A symlink in place of a claim file is refused, not followed.
	s = Store{Dir: filepath.Join(dir, "state2")}
	if err := s.AddClaim("pkg", e); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(elsewhere, "secret")
	os.WriteFile(secret, []byte(e.Status()), 0o600)
	if err := os.Symlink(secret, filepath.Join(s.Dir, "pkg", "a", "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claims("pkg"); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Claims with a symlinked claim: %v, want ErrUnsafeState", err)
	}
	if err := os.Chmod(s.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClaim("pkg", e); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("AddClaim in a world-writable state dir: %v, want ErrUnsafeState", err)
	}
}

func TestStoreBadNames(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	e := mustEntry(t, ":a:M::\\x7fAA::/bin/a:F")
	for _, pkg := range []string{"", ".", "..", "a/b", ".hidden"} {
		if err := s.AddClaim(pkg, e); err == nil {
			t.Errorf("AddClaim(%q) accepted a bad package name", pkg)
		}
	}
}

func FuzzParseClaim(f *testing.F) {
	f.Add("a", []byte(mustEntry(f, ":a:M:3:\\x7fAA:\\xff\\x0f\\xff:/bin/a:PCF").Status()))
	f.Add("b", []byte(mustEntry(f, ":b:E::bee::/bin/b:").Status()))
	f.Add("c", []byte("disabled\ninterpreter /x\nflags: \noffset 0\nmagic 00\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		e, err := ParseClaim(name, data)
		if err != nil {
			return
		}
		again, err := ParseClaim(name, []byte(e.Status()))
		if err != nil {
			t.Fatalf("Status() of a parsed claim does not parse: %v\n%s", err, e.Status())
		}
		if !binfmt.SameDefinition(e, again) {
			t.Fatalf("round trip changed the claim:\n%+v\n%+v", e, again)
		}
	})
}
