package assemble

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmfile"
)

func TestParseCompression(t *testing.T) {
	for in, preset := range map[string]string{"": "small", "small": "small", "fast": "fast", "smallest": "smallest"} {
		c, err := parseCompression(in)
		if err != nil || c.preset == nil || c.name != preset {
			t.Errorf("parseCompression(%q) = %+v, %v, want preset %q", in, c, err, preset)
		}
	}
	// nfpm's strings are refused with the reason: its packager cannot
	// write a complete package.
	for _, in := range []string{"gzip", "gzip:1", "zstd", "zstd:fastest", "zstd:19", "xz", "lzma"} {
		if _, err := parseCompression(in); err == nil || !strings.Contains(err.Error(), "cannot write Requires(post)") || !strings.Contains(err.Error(), "known: fast, small, smallest") {
			t.Errorf("parseCompression(%q): error %v, want nfpm's strings refused", in, err)
		}
	}
	for _, in := range []string{"bzip2", "small:1", "ultra"} {
		if _, err := parseCompression(in); err == nil || !strings.Contains(err.Error(), "unknown compression (known:") {
			t.Errorf("parseCompression(%q): error %v, want one listing the known values", in, err)
		}
	}
	// Every preset stays within what rpm can decompress.
	for name, p := range presets {
		if p.Window > 1<<27 || p.Segments < 1 || p.Workers < 1 {
			t.Errorf("preset %s: %+v", name, p)
		}
	}
}

func TestFedoraSubpackages(t *testing.T) {
	// Every target maps to a subpackage of Fedora's qemu.spec; the
	// grouped ones are spelled out there.
	want := map[string]string{
		"aarch64_be": "qemu-user-static-aarch64", "armeb": "qemu-user-static-arm",
		"mipsn32el": "qemu-user-static-mips", "ppc64le": "qemu-user-static-ppc",
		"riscv32": "qemu-user-static-riscv", "sh4eb": "qemu-user-static-sh4",
		"sparc32plus": "qemu-user-static-sparc", "i486": "qemu-user-static-x86",
		"x86_64": "qemu-user-static-x86", "xtensaeb": "qemu-user-static-xtensa",
		"microblazeel": "qemu-user-static-microblaze", "s390x": "qemu-user-static-s390x",
		"loongarch64": "qemu-user-static-loongarch64", "hexagon": "qemu-user-static-hexagon",
	}
	for cpu, pkg := range want {
		if got := fedoraSubpackage(cpu); got != pkg {
			t.Errorf("fedoraSubpackage(%s) = %s, want %s", cpu, got, pkg)
		}
	}
	for _, cpu := range qemu.CPUs() {
		if !strings.HasPrefix(fedoraSubpackage(cpu), "qemu-user-static-") {
			t.Errorf("fedoraSubpackage(%s) = %s", cpu, fedoraSubpackage(cpu))
		}
	}
}

func FuzzParseTriggers(f *testing.F) {
	f.Add([]byte("triggers: []\n"))
	f.Add([]byte("triggers:\n  - packages: [binfmtctl]\n    kind: transfiletriggerin\n    priority: 1000600\n    prefixes: [/usr/lib/binfmt.d]\n    prog: <lua>\n    script: scriptlets/x.lua\n"))
	f.Add([]byte("triggers:\n  - kind: filetriggerun\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := ParseTriggers("fuzz.yaml", bytes.NewReader(data))
		if err != nil {
			return
		}
		// What parses is what the writer accepts.
		for _, tr := range list {
			k, err := rpmfile.ParseTriggerKind(tr.Kind)
			if err != nil {
				t.Fatalf("accepted kind %q: %v", tr.Kind, err)
			}
			if err := (rpmfile.FileTrigger{Kind: k, Priority: tr.Priority, Prefixes: tr.Prefixes, Prog: tr.Prog}).Check(); err != nil {
				t.Fatalf("accepted %+v: %v", tr, err)
			}
			if len(tr.Packages) == 0 || tr.Script == "" {
				t.Fatalf("accepted %+v", tr)
			}
		}
	})
}

// TestCheckStatic runs the check on real files: Debian's interpreters
// (static-pie), a static Go program (not PIE), a dynamic program, a
// shared library (no program interpreter, but DT_NEEDED), and a file that
// is not ELF.
func TestCheckStatic(t *testing.T) {
	sandbox.Require(t, "/usr/bin/qemu-s390x-static", "qemu-user-static")
	goStatic := sandbox.CrossBuild(t, runtime.GOARCH, sandbox.HelloSource("static"))
	libs, _ := filepath.Glob("/usr/lib/*/libz.so.1")
	if len(libs) == 0 {
		t.Fatal("no /usr/lib/*/libz.so.1: install with `apt-get install -y zlib1g`")
	}
	text := filepath.Join(t.TempDir(), "qemu-s390x-static")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho not an ELF file\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path      string
		notStatic bool
		want      string
	}{
		{"/usr/bin/qemu-s390x-static", false, ""},
		{"/usr/bin/qemu-riscv64-static", false, ""},
		{goStatic, false, ""},
		{"/usr/bin/ls", true, `"/usr/bin/ls" is dynamically linked (program interpreter /lib`},
		{libs[0], true, "needs shared libraries (libc.so.6)"},
		{text, false, "checking that " + `"` + text + `" is static: bad magic number`},
	} {
		err := checkStatic(c.path)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("checkStatic(%s): %v", c.path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("checkStatic(%s): error %v, want one containing %q", c.path, err, c.want)
		case errors.Is(err, ErrNotStatic) != c.notStatic:
			t.Errorf("checkStatic(%s): errors.Is(%v, ErrNotStatic) is %v", c.path, err, !c.notStatic)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	empty, slash := "", "x/y"
	for _, c := range []struct {
		o    Options
		want string
		cpu  bool
	}{
		{Options{}, "", false},
		{Options{CPUs: []string{"aarch64", "s390x"}, Compression: "smallest", Version: "1.2", Release: "3", QemuSuffix: &empty}, "", false},
		{Options{CPUs: []string{"aarch46", "s390x", "z80"}}, "unknown qemu target aarch46, z80 (known: i386", true},
		{Options{Compression: "ultra"}, `compression "ultra": unknown compression`, false},
		{Options{Version: "1-2"}, `version "1-2"`, false},
		{Options{Release: "a b"}, `release "a b"`, false},
		{Options{QemuSuffix: &slash}, `interpreter suffix "x/y"`, false},
	} {
		err := CheckOptions(c.o)
		if c.want == "" {
			if err != nil {
				t.Errorf("CheckOptions(%+v): %v", c.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrOption) {
			t.Errorf("CheckOptions(%+v): error %v, want an ErrOption containing %q", c.o, err, c.want)
		}
		if errors.Is(err, qemu.ErrUnknownCPU) != c.cpu {
			t.Errorf("CheckOptions(%+v): errors.Is(%v, ErrUnknownCPU) is %v", c.o, err, !c.cpu)
		}
	}
}
