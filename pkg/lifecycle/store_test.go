package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

func TestStoreSaveAndRead(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "binfmtctl")}
	a1 := mustEntry(t, ":a:M::\\x7fAA::/bin/a:F")
	a2 := mustEntry(t, ":a:M::\\x7fAB::/bin/a:F")
	b := mustEntry(t, ":b:E::bee::/bin/b:")

	c, err := s.Claims("pkg")
	if err != nil || len(c) != 0 {
		t.Fatalf("empty store: %v %v", c, err)
	}
	c = Claims{}
	for _, e := range []binfmt.Entry{a1, a2, b, a1} {
		c.Add(e)
	}
	if err := s.Save("pkg", c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claims("pkg")
	if err != nil {
		t.Fatal(err)
	}
	if len(got["a"]) != 2 || len(got["b"]) != 1 {
		t.Fatalf("claims = %+v", got)
	}
	if !got.Owns(binfmt.Live{Entry: a2}) || !got.Owns(binfmt.Live{Entry: b, Enabled: false}) {
		t.Fatal("claims do not own their entries")
	}
	if got.Owns(binfmt.Live{Entry: mustEntry(t, ":a:M::\\x7fAC::/bin/a:F")}) {
		t.Fatal("claims own a different definition")
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "pkg"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("record mode: %v %v", fi, err)
	}
	if pkgs, _ := s.Packages(); len(pkgs) != 1 || pkgs[0] != "pkg" {
		t.Fatalf("Packages = %v", pkgs)
	}
	if err := s.Save("pkg", Claims{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir left behind after the last record: %v", err)
	}
}

func TestParseRecordDamage(t *testing.T) {
	good := Claims{}
	good.Add(mustEntry(t, ":a:M::\\x7fAA::/bin/a:F"))
	good.Add(mustEntry(t, ":b:E::bee::/bin/b:"))
	data := string(good.Render())

	c, err := ParseRecord([]byte(data))
	if err != nil || len(c) != 2 {
		t.Fatalf("good record: %v %v", c, err)
	}
	// Cut short in the last claim: the first survives.
	c, err = ParseRecord([]byte(data[:len(data)-10]))
	if !errors.Is(err, ErrBadRecord) || len(c["a"]) != 1 || len(c["b"]) != 0 {
		t.Fatalf("truncated record: %v %v", c, err)
	}
	// Another version is not trusted at all.
	c, err = ParseRecord([]byte(strings.Replace(data, "record 1", "record 2", 1)))
	if !errors.Is(err, ErrBadRecord) || len(c) != 0 || !strings.Contains(err.Error(), "unknown record version") {
		t.Fatalf("newer record: %v %v", c, err)
	}
	for _, junk := range []string{"", "garbage", "# binfmtctl record 1\nstray\n== a\n"} {
		if _, err := ParseRecord([]byte(junk)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("ParseRecord(%q) = %v, want ErrBadRecord", junk, err)
		}
	}
}

func TestStoreRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	s := Store{Dir: filepath.Join(dir, "binfmtctl")}
	if err := os.Symlink(elsewhere, s.Dir); err != nil {
		t.Fatal(err)
	}
	c := Claims{}
	c.Add(mustEntry(t, ":a:M::\\x7fAA::/bin/a:F"))
	if err := s.Save("pkg", c); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Save through a symlinked state dir: %v, want ErrUnsafeState", err)
	}
	if _, err := s.Claims("pkg"); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Claims through a symlinked state dir: %v, want ErrUnsafeState", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("wrote through the symlink: %v", ents)
	}

	// A symlink in place of the record is refused, not followed, and not
	// written through.
	s = Store{Dir: filepath.Join(dir, "state2")}
	os.Mkdir(s.Dir, 0o755)
	secret := filepath.Join(elsewhere, "secret")
	os.WriteFile(secret, c.Render(), 0o600)
	if err := os.Symlink(secret, filepath.Join(s.Dir, "pkg")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claims("pkg"); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Claims with a symlinked record: %v, want ErrUnsafeState", err)
	}
	if err := s.Save("pkg", c); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(secret); string(data) != string(c.Render()) {
		t.Fatal("Save wrote through the symlink")
	}
	if fi, _ := os.Lstat(filepath.Join(s.Dir, "pkg")); fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("the record is still a symlink after Save")
	}

	if err := os.Chmod(s.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("pkg", c); !errors.Is(err, ErrUnsafeState) {
		t.Fatalf("Save in a world-writable state dir: %v, want ErrUnsafeState", err)
	}
}

func TestStoreBadNames(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	c := Claims{}
	c.Add(mustEntry(t, ":a:M::\\x7fAA::/bin/a:F"))
	for _, pkg := range []string{"", ".", "..", "a/b", ".hidden"} {
		if err := s.Save(pkg, c); err == nil {
			t.Errorf("Save(%q) accepted a bad package name", pkg)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	c := Claims{}
	c.Add(mustEntry(f, ":a:M:3:\\x7fAA:\\xff\\x0f\\xff:/bin/a:PCF"))
	c.Add(mustEntry(f, ":b:E::bee::/bin/b:"))
	f.Add(c.Render())
	f.Add([]byte("# binfmtctl record 1\n== c\ndisabled\ninterpreter /x\nflags: \noffset 0\nmagic 00\n"))
	f.Add([]byte("# binfmtctl record 1\n== \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := ParseRecord(data)
		if c == nil {
			t.Fatal("ParseRecord returned nil claims")
		}
		again, err := ParseRecord(c.Render())
		if err != nil {
			t.Fatalf("a rendered record does not parse: %v\n%s", err, c.Render())
		}
		if string(again.Render()) != string(c.Render()) {
			t.Fatalf("round trip changed the record:\n%s\n%s", c.Render(), again.Render())
		}
	})
}
