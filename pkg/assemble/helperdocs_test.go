package assemble_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
)

// TestHelperDocs checks that both packages install binfmtctl's manual page
// (compressed, marked %doc as rpmbuild marks man pages) and its bash, zsh
// and fish completions, the same bytes in both, printed by the helper of
// the package's own version.
func TestHelperDocs(t *testing.T) {
	needInterpreters(t, "s390x")
	res := build(t, assemble.Options{CPUs: []string{"s390x"}, Version: "4.5", Release: "6", Binfmtctl: "-", Compression: "fast"})
	_, helperFiles := readPackage(t, res.Packages[0].Path)
	_, mainFiles := readPackage(t, res.Path)
	const fileDoc = 1 << 1
	for _, p := range []string{
		"/usr/share/man/man8/binfmtctl.8.gz",
		"/usr/share/bash-completion/completions/binfmtctl",
		"/usr/share/zsh/site-functions/_binfmtctl",
		"/usr/share/fish/vendor_completions.d/binfmtctl.fish",
	} {
		h, m := helperFiles[p], mainFiles[p]
		if h == nil || m == nil {
			t.Errorf("%s: in binfmtctl %v, in qemu-user-static-go %v", p, h != nil, m != nil)
			continue
		}
		if !bytes.Equal(h.data, m.data) || h.mode != m.mode || h.flags != m.flags {
			t.Errorf("%s differs between the packages", p)
		}
		if h.mode&0o7777 != 0o644 || h.owner != "root" {
			t.Errorf("%s: mode %o owner %s", p, h.mode, h.owner)
		}
		wantDoc := strings.Contains(p, "/man/")
		if (h.flags&fileDoc != 0) != wantDoc {
			t.Errorf("%s: flags %#x, %%doc should be %v", p, h.flags, wantDoc)
		}
	}
	man := helperFiles["/usr/share/man/man8/binfmtctl.8.gz"]
	if man == nil {
		t.FailNow()
	}
	zr, err := gzip.NewReader(bytes.NewReader(man.data))
	if err != nil {
		t.Fatalf("the manual page is not gzip: %v", err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("the manual page's gzip header records name %q and time %v (gzip -n records neither)", zr.Name, zr.ModTime)
	}
	roff, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(roff, []byte(".TH BINFMTCTL 8")) || !bytes.Contains(roff, []byte(`"binfmtctl 4.5\-6"`)) {
		t.Errorf("the manual page is not binfmtctl(8) of 4.5-6:\n%.300s", roff)
	}
	for p, want := range map[string]string{
		"/usr/share/bash-completion/completions/binfmtctl":    "complete",
		"/usr/share/zsh/site-functions/_binfmtctl":            "#compdef binfmtctl",
		"/usr/share/fish/vendor_completions.d/binfmtctl.fish": "complete -c binfmtctl",
	} {
		if f := helperFiles[p]; f == nil || !bytes.Contains(f.data, []byte(want)) || !bytes.Contains(f.data, []byte("register")) {
			t.Errorf("%s does not look like binfmtctl's completion (%q, register)", p, want)
		}
	}
}
