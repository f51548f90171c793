package inspect_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

func entryNames(r *inspect.Report) string {
	var n []string
	for _, e := range r.Entries {
		n = append(n, e.Name+"@"+e.File)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// TestConfSymlinks: binfmt.d files shipped as symlinks are read from
// the file they resolve to within the payload, through the package's
// own directory links, relative or absolute (issue 16 point 5: such a
// package showed "0 entries, no problems" and registered OC entries
// once installed). A link that leaves the package is a lint error; a
// link to /dev/null is a mask.
func TestConfSymlinks(t *testing.T) {
	oc := func(name string) []byte { return []byte(":" + name + ":E::" + name + "::/usr/bin/interp:OC\n") }
	spec := sandbox.PackageSpec{
		Name: "links", Version: "1", Arch: "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/bin/interp", Content: []byte("#!/bin/sh\n"), Mode: 0o755},
			{Dst: "/usr/share/links/abs.conf", Content: oc("abs")},
			{Dst: "/usr/share/links/rel.conf", Content: oc("rel")},
			{Dst: "/usr/share/links/dir.conf", Content: oc("dir")},
			{Dst: "/usr/lib/binfmt.d/abs.conf", Src: "/usr/share/links/abs.conf", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/rel.conf", Src: "../../share/links/rel.conf", Type: "symlink"},
			// Through a directory link of the package, and a chain.
			{Dst: "/opt/links", Src: "/usr/share/links", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/chain.conf", Src: "dir-link.conf", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/dir-link.conf", Src: "/opt/links/dir.conf", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/out.conf", Src: "/etc/elsewhere.conf", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/mask.conf", Src: "/dev/null", Type: "symlink"},
			{Dst: "/usr/lib/binfmt.d/loop.conf", Src: "loop.conf", Type: "symlink"},
			// A binfmt.d directory that is itself a link of the package:
			// systemd-binfmt reads the files it leads to.
			{Dst: "/usr/local/lib/binfmt.d", Src: "../../share/links/d", Type: "symlink"},
			{Dst: "/usr/share/links/d/viadir.conf", Content: oc("viadir")},
			{Dst: "/usr/share/links/d/README", Content: []byte("not a conf\n")},
		},
		Post: "/usr/bin/binfmtctl hook post x-1-1 \"$1\" || :\n", PreUn: "/usr/bin/binfmtctl hook preun x-1-1 \"$1\" || :\n",
	}
	rep, err := inspect.File(sandbox.BuildRPM(t, spec), inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "abs@/usr/lib/binfmt.d/abs.conf dir@/usr/lib/binfmt.d/chain.conf dir@/usr/lib/binfmt.d/dir-link.conf rel@/usr/lib/binfmt.d/rel.conf viadir@/usr/local/lib/binfmt.d/viadir.conf"
	if got := entryNames(rep); got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
	errs := problems(rep, inspect.SeverityError)
	for _, w := range []string{
		"error: /usr/lib/binfmt.d/out.conf: is a symbolic link to /etc/elsewhere.conf, outside the package",
		"error: /usr/lib/binfmt.d/loop.conf: is a symbolic link that does not resolve within 40 links",
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("errors lack %q:\n%s", w, errs)
		}
	}
	if strings.Contains(errs, "mask.conf") || strings.Count(errs, "\n") != 2 {
		t.Errorf("errors:\n%s\nwant only out.conf's and loop.conf's", errs)
	}
	for _, c := range rep.Confs {
		if c.Path == "/usr/lib/binfmt.d/chain.conf" && c.Target != "/usr/share/links/dir.conf" {
			t.Errorf("chain.conf has target %q", c.Target)
		}
		if c.Path == "/usr/lib/binfmt.d/mask.conf" && !c.Masked {
			t.Errorf("mask.conf is not a mask: %+v", c)
		}
	}
}

// TestConfHardlinks builds, with the real rpmbuild, a package whose
// binfmt.d file is a hardlink of a file elsewhere: rpm writes the data
// once, with the last file of the set, and the others come with none.
// Every name of the set defines the entries, whichever carries the data.
func TestConfHardlinks(t *testing.T) {
	sandbox.Require(t, "rpmbuild", "rpm")
	top := t.TempDir()
	spec := filepath.Join(top, "hard.spec")
	body := `Name: hard
Version: 1
Release: 1
Summary: hardlinked binfmt.d files
License: MIT
BuildArch: noarch
%global debug_package %{nil}
%global _build_id_links none
%description
test
%install
mkdir -p %{buildroot}/usr/lib/binfmt.d %{buildroot}/usr/share/hard %{buildroot}/usr/bin
printf '#!/bin/sh\n' > %{buildroot}/usr/bin/interp
chmod 755 %{buildroot}/usr/bin/interp
printf ':hard:E::hard::/usr/bin/interp:OC\n' > %{buildroot}/usr/share/hard/a.conf
ln %{buildroot}/usr/share/hard/a.conf %{buildroot}/usr/lib/binfmt.d/a.conf
ln %{buildroot}/usr/share/hard/a.conf %{buildroot}/usr/lib/binfmt.d/z.conf
%files
/usr/bin/interp
/usr/share/hard/a.conf
/usr/lib/binfmt.d/a.conf
/usr/lib/binfmt.d/z.conf
`
	rep, err := inspect.File(rpmbuild(t, top, spec, body, nil), inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := entryNames(rep), "hard@/usr/lib/binfmt.d/a.conf hard@/usr/lib/binfmt.d/z.conf"; got != want {
		t.Errorf("entries %s, want %s\nconfs %+v", got, want, rep.Confs)
	}
	if errs := problems(rep, inspect.SeverityError); errs != "" {
		t.Errorf("errors:\n%s", errs)
	}
}

// rpmbuild writes body to spec, builds it with the real rpmbuild under
// top with the given macros, and returns the one binary package.
func rpmbuild(t *testing.T, top, spec, body string, defines map[string]string) string {
	t.Helper()
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-bb", "--nodeps", "--define", "_topdir " + top}
	for k, v := range defines {
		args = append(args, "--define", k+" "+v)
	}
	cmd := exec.Command("rpmbuild", append(args, spec)...)
	cmd.Env = append(os.Environ(), "HOME=/root")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "noarch", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild wrote %q", rpms)
	}
	return rpms[0]
}

// TestCompressors reads packages of every payload compressor through
// inspect's own decoders: those nfpm writes, and those of the real
// rpmbuild (rpm's own cpio, with "./" names), bzip2 and no compression
// included.
func TestCompressors(t *testing.T) {
	conf := []byte(":comp:E::comp::/usr/bin/interp:\n")
	for _, c := range []string{"gzip", "zstd", "xz", "lzma"} {
		t.Run("nfpm "+c, func(t *testing.T) {
			p := sandbox.BuildRPM(t, sandbox.PackageSpec{Name: "comp", Version: "1", Arch: "x86_64", Compression: c,
				Files: []sandbox.File{{Dst: "/usr/lib/binfmt.d/c.conf", Content: conf}, {Dst: "/usr/bin/interp", Content: bytes.Repeat([]byte("x"), 100000), Mode: 0o755}}})
			rep, err := inspect.File(p, inspect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Entries) != 1 || rep.Compressor != c || rep.Digests.FilesOK != 2 {
				t.Errorf("compressor %s, entries %+v, digests %+v", rep.Compressor, rep.Entries, rep.Digests)
			}
		})
	}
	sandbox.Require(t, "rpmbuild", "rpm")
	body := `Name: comp
Version: 1
Release: 1
Summary: compressors
License: MIT
BuildArch: noarch
%global debug_package %{nil}
%global _build_id_links none
%description
test
%install
mkdir -p %{buildroot}/usr/lib/binfmt.d %{buildroot}/usr/bin
head -c 200000 /dev/urandom > %{buildroot}/usr/bin/interp
chmod 755 %{buildroot}/usr/bin/interp
printf ':comp:E::comp::/usr/bin/interp:\n' > %{buildroot}/usr/lib/binfmt.d/c.conf
%files
/usr/bin/interp
/usr/lib/binfmt.d/c.conf
`
	for payload, want := range map[string]string{"w9.bzdio": "bzip2", "w6.lzdio": "lzma", "w6.xzdio": "xz", "w19.zstdio": "zstd", "w9.gzdio": "gzip", "w.ufdio": ""} {
		t.Run("rpmbuild "+payload, func(t *testing.T) {
			top := t.TempDir()
			p := rpmbuild(t, top, filepath.Join(top, "comp.spec"), body, map[string]string{"_binary_payload": payload})
			rep, err := inspect.File(p, inspect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Entries) != 1 || want != "" && rep.Compressor != want || rep.Digests.FilesOK != 2 {
				t.Errorf("compressor %s, entries %+v, digests %+v", rep.Compressor, rep.Entries, rep.Digests)
			}
		})
	}
}
