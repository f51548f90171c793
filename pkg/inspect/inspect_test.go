package inspect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "rpm", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// conf is the generator's binfmt.d file for cpu.
func conf(t *testing.T, cpu string) []byte {
	t.Helper()
	files, err := qemu.Generate([]string{cpu}, "none", qemu.Options{IncludeHostFamily: true})
	if err != nil || len(files) != 1 {
		t.Fatalf("generating %s: %v", cpu, err)
	}
	return files[0].Data
}

// qemuPackage is a package laid out like Fedora's qemu-user-static-<cpu>,
// with a stand-in interpreter, and the given scriptlets.
func qemuPackage(cpu string, confData []byte, post, preun, postun string) sandbox.PackageSpec {
	return sandbox.PackageSpec{
		Name:    "qemu-user-static-" + cpu,
		Version: "9.0",
		Arch:    "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/bin/qemu-" + cpu + "-static", Content: []byte("\x7fELF stand-in"), Mode: 0o755},
			{Dst: "/usr/lib/binfmt.d/qemu-" + cpu + "-static.conf", Content: confData},
		},
		Post: post, PreUn: preun, PostUn: postun,
	}
}

func problems(r *inspect.Report, sev inspect.Severity) string {
	var b strings.Builder
	for _, p := range r.Problems {
		if p.Severity == sev {
			b.WriteString(p.String() + "\n")
		}
	}
	return b.String()
}

func TestBuiltPackageIsClean(t *testing.T) {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	sandbox.Require(t, "/usr/bin/qemu-s390x-static", "qemu-user-static")
	res, err := assemble.Build(context.Background(), assemble.Options{
		CPUs:            []string{"aarch64", "s390x"},
		OutputDir:       t.TempDir(),
		Compression:     "fast",
		Binfmtctl:       sandbox.CrossBuild(t, "amd64", sandbox.HelloSource("binfmtctl stand-in")),
		SourceDateEpoch: time.Unix(1700000000, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.File(res.Path, inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems in the built package:\n%s%s", problems(rep, inspect.SeverityError), problems(rep, inspect.SeverityWarning))
	}
	if rep.NEVRA != res.NEVRA || rep.Host != "x86_64" || rep.Compressor != "zstd" {
		t.Errorf("NEVRA %s host %s compressor %s", rep.NEVRA, rep.Host, rep.Compressor)
	}
	if rep.Digests.Header != "SHA256" || rep.Digests.Payload != "SHA256" || rep.Digests.FilesOK < 7 {
		t.Errorf("digests %+v", rep.Digests)
	}
	if len(rep.Entries) != 2 {
		t.Fatalf("entries %+v", rep.Entries)
	}
	for i, cpu := range []string{"aarch64", "s390x"} {
		e := rep.Entries[i]
		tgt, _ := qemu.Lookup(cpu)
		if e.Name != "qemu-"+cpu || e.Target != cpu || len(e.Families) != 1 || e.Families[0] != tgt.Family || !e.Shipped || e.Flags != "F" {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	var phases []string
	for _, s := range rep.Scriptlets {
		phases = append(phases, s.Phase)
	}
	if strings.Join(phases, " ") != "post preun postun" {
		t.Errorf("scriptlets %v", phases)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{res.NEVRA, "payload SHA256 OK", "signatures:  none", "%post (/bin/sh):", "qemu-aarch64 M F /usr/bin/qemu-aarch64-static", "lint: no problems"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestLint(t *testing.T) {
	const (
		register   = "/usr/bin/binfmtctl hook post '%{name}' \"$1\" || :\n"
		unregister = "/usr/bin/binfmtctl hook preun 'x-1-1' \"$1\" || :\n"
	)
	aarch64 := conf(t, "aarch64")
	cases := []struct {
		name     string
		spec     sandbox.PackageSpec
		host     string
		errors   []string // each must be in one error
		warnings []string
	}{
		{
			name:   "the old way",
			spec:   qemuPackage("aarch64", aarch64, fixture(t, "oldway/post.sh"), "", fixture(t, "oldway/postun.sh")),
			errors: []string{"%post: registers binfmt entries (\"systemd-binfmt\") but neither %preun nor %postun unregisters them"},
		},
		{
			name: "binfmtctl hooks",
			spec: qemuPackage("aarch64", aarch64, register, unregister, ""),
		},
		{
			name: "the binfmtctl macros",
			spec: qemuPackage("aarch64", aarch64,
				"if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl hook post 'x-1-1' \"$1\" || :; fi\n",
				"if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl hook preun 'x-1-1' \"$1\" || :; fi\n",
				"if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl hook postun 'x-1-1' \"$1\" || :; fi\n"),
		},
		{
			name: "raw register and -1",
			spec: qemuPackage("aarch64", aarch64,
				"cat /usr/lib/binfmt.d/qemu-aarch64-static.conf > /proc/sys/fs/binfmt_misc/register\n", "",
				"[ \"$1\" = 0 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64\n"),
		},
		{
			name:     "flush everything",
			spec:     qemuPackage("aarch64", aarch64, "/usr/lib/systemd/systemd-binfmt\n", "", "/usr/lib/systemd/systemd-binfmt --unregister\n"),
			warnings: []string{"removes every binfmt_misc entry"},
		},
		{
			name:     "no registration at all",
			spec:     qemuPackage("aarch64", aarch64, "", "", ""),
			warnings: []string{"does not register them; they take effect at the next boot"},
		},
		{
			name:   "bad conf",
			spec:   qemuPackage("aarch64", []byte(fixture(t, "bad.conf")), register, unregister, ""),
			errors: []string{"/usr/lib/binfmt.d/qemu-aarch64-static.conf: does not parse: /usr/lib/binfmt.d/qemu-aarch64-static.conf:3:"},
		},
		{
			name: "F interpreter missing",
			spec: func() sandbox.PackageSpec {
				s := qemuPackage("aarch64", aarch64, register, unregister, "")
				s.Files = s.Files[1:]
				return s
			}(),
			errors: []string{"line 2: entry qemu-aarch64 has flag F, but its interpreter /usr/bin/qemu-aarch64-static is neither in the package nor required by it"},
		},
		{
			name: "F interpreter required",
			spec: func() sandbox.PackageSpec {
				s := qemuPackage("aarch64", aarch64, register, unregister, "")
				s.Files = s.Files[1:]
				s.Requires = []string{"/usr/bin/qemu-aarch64-static"}
				return s
			}(),
		},
		{
			name:   "host family",
			spec:   qemuPackage("i386", conf(t, "i386"), register, unregister, ""),
			errors: []string{"entry qemu-i386 matches i386 programs, which a x86_64 host runs natively"},
		},
		{
			name: "host family of another host",
			spec: qemuPackage("i386", conf(t, "i386"), register, unregister, ""),
			host: "aarch64",
		},
		{
			name:   "entry for any ELF",
			spec:   qemuPackage("aarch64", []byte(fixture(t, "elf-any.conf")), register, unregister, ""),
			errors: []string{"entry elf-any matches x86_64 programs"},
		},
		{
			name: "same entry twice",
			spec: func() sandbox.PackageSpec {
				s := qemuPackage("aarch64", aarch64, register, unregister, "")
				s.Files = append(s.Files, sandbox.File{Dst: "/usr/lib/binfmt.d/zz-qemu-aarch64.conf", Content: aarch64})
				return s
			}(),
			warnings: []string{"entry qemu-aarch64 is also defined at /usr/lib/binfmt.d/qemu-aarch64-static.conf:2"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := sandbox.BuildRPM(t, c.spec)
			rep, err := inspect.File(p, inspect.Options{Host: c.host})
			if err != nil {
				t.Fatal(err)
			}
			errs, warns := problems(rep, inspect.SeverityError), problems(rep, inspect.SeverityWarning)
			if len(c.errors) == 0 && errs != "" {
				t.Errorf("unexpected errors:\n%s", errs)
			}
			for _, w := range c.errors {
				if !strings.Contains(errs, w) {
					t.Errorf("errors lack %q:\n%s", w, errs)
				}
			}
			if len(c.warnings) == 0 && warns != "" {
				t.Errorf("unexpected warnings:\n%s", warns)
			}
			for _, w := range c.warnings {
				if !strings.Contains(warns, w) {
					t.Errorf("warnings lack %q:\n%s", w, warns)
				}
			}
			if len(rep.Errors()) != strings.Count(errs, "\n") {
				t.Errorf("Errors() = %v", rep.Errors())
			}
		})
	}
}

// small is a small valid package to damage.
func small(t testing.TB) []byte {
	t.Helper()
	p := sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "small", Version: "1", Arch: "x86_64", Compression: "zstd:fastest",
		Files: []sandbox.File{
			{Dst: "/usr/lib/binfmt.d/a.conf", Content: []byte(":a:E::a::/bin/true:\n")},
			{Dst: "/bin/true-ish", Content: bytes.Repeat([]byte("payload "), 64), Mode: 0o755},
		},
		Post: "echo hi\n",
	})
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// offsets returns where the signature header, the header and the payload
// start.
func offsets(t *testing.T, data []byte) (sig, hdr, payload int) {
	t.Helper()
	size := func(at int, pad bool) int {
		n := int(binary.BigEndian.Uint32(data[at+8:]))
		d := int(binary.BigEndian.Uint32(data[at+12:]))
		if pad {
			d = (d + 7) / 8 * 8
		}
		return 16 + 16*n + d
	}
	sig = 96
	hdr = sig + size(sig, true)
	payload = hdr + size(hdr, false)
	return
}

func TestDamagedInput(t *testing.T) {
	good := small(t)
	sig, hdr, payload := offsets(t, good)
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x40
		return b
	}
	setUint32 := func(at int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[at:], v)
		return b
	}
	cases := []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"empty", nil, "the file is empty", inspect.ErrNotRPM},
		{"text", []byte("#!/bin/sh\necho not an rpm\n"), "no rpm lead magic", inspect.ErrNotRPM},
		{"truncated lead", good[:50], "the lead is truncated", inspect.ErrMalformed},
		{"truncated signature header", good[:sig+20], "the signature header is truncated", inspect.ErrMalformed},
		{"truncated header", good[:hdr+100], "the header is truncated", inspect.ErrMalformed},
		{"truncated payload", good[:payload+(len(good)-payload)/2], "", nil},
		{"payload only half there", good[:payload+10], "", nil},
		{"flipped payload byte", flip(payload + (len(good)-payload)/2), "the payload does not match its digest", inspect.ErrDigest},
		{"flipped header data byte", flip(payload - 40), "", nil},
		{"flipped header magic", flip(hdr + 1), "no header magic", inspect.ErrMalformed},
		{"flipped signature digest", flipDigest(t, good, hdr, payload), "the header does not match its digest", inspect.ErrDigest},
		{"header entry count too large", setUint32(hdr+8, 0x7fffffff), "claims 2147483647 entries", inspect.ErrMalformed},
		{"header data size too large", setUint32(hdr+12, 0x7fffffff), "claims 2147483647 bytes", inspect.ErrMalformed},
		{"signature entry offset out of range", setUint32(sig+16+16+8, 0xfffff), "points at byte", inspect.ErrMalformed},
		{"header entry offset out of range", setUint32(hdr+16+16*3+8, 0xfffff), "points at byte", inspect.ErrMalformed},
		{"unknown entry type", setUint32(hdr+16+16*3+4, 77), "unknown type 77", inspect.ErrMalformed},
		{"trailing garbage", append(bytes.Clone(good), "garbage"...), "the payload does not match its digest", inspect.ErrDigest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.rpm")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := inspect.File(p, inspect.Options{})
			if err == nil {
				t.Fatalf("no error; report %+v", rep)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want one mentioning %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		if _, err := inspect.File(t.TempDir(), inspect.Options{}); !errors.Is(err, inspect.ErrNotRPM) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := inspect.File(filepath.Join(t.TempDir(), "none.rpm"), inspect.Options{}); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v", err)
		}
	})
}

// flipDigest changes one hex digit of the header's SHA-256 in the
// signature header.
func flipDigest(t *testing.T, good []byte, hdr, payload int) []byte {
	t.Helper()
	sum := sha256.Sum256(good[hdr:payload])
	i := bytes.Index(good, []byte(hex.EncodeToString(sum[:])))
	if i < 0 || i > hdr {
		t.Fatal("no header digest in the signature header")
	}
	b := bytes.Clone(good)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return b
}

// FuzzRead feeds damaged packages to Read: it may fail, never panic.
func FuzzRead(f *testing.F) {
	good := small(f)
	f.Add(good)
	f.Add(good[:200])
	f.Add([]byte{})
	// Real v6 packages (rpm 6.1's rpmbuild), for the v6 digests,
	// signatures and the stripped cpio payload.
	for _, name := range []string{"v6.rpm", "v6-signed.rpm"} {
		b, err := os.ReadFile(filepath.Join("testdata", "v6", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inspect.Read(bytes.NewReader(data), int64(len(data)), "fuzz.rpm", inspect.Options{})
	})
}
