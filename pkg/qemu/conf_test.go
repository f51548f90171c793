package qemu

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/qemu")

// goldenDir holds the files Generate writes for an x86_64 host with the
// default options: what the package installs in /usr/lib/binfmt.d.
var goldenDir = filepath.Join("..", "..", "testdata", "qemu")

func TestGolden(t *testing.T) {
	files, err := Generate(nil, "x86_64", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		old, _ := filepath.Glob(filepath.Join(goldenDir, "*.conf"))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(goldenDir, f.Name), f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		want, err := os.ReadFile(filepath.Join(goldenDir, f.Name))
		if err != nil {
			t.Errorf("reading golden file (run go test ./pkg/qemu -update to create it): %v", err)
			continue
		}
		if !bytes.Equal(f.Data, want) {
			t.Errorf("%s differs from the golden file (go test ./pkg/qemu -update rewrites it)\n got: %q\nwant: %q", f.Name, f.Data, want)
		}
	}
	golden, _ := filepath.Glob(filepath.Join(goldenDir, "*.conf"))
	for i := range golden {
		golden[i] = filepath.Base(golden[i])
	}
	slices.Sort(golden)
	slices.Sort(names)
	if !slices.Equal(golden, names) {
		t.Errorf("golden files %v\ndo not match the generated set %v", golden, names)
	}
}

func TestConfRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		flags  string
		bindir string
	}{
		{"default", Options{}, "F", "/usr/bin"},
		{"preserve", Options{Preserve: true}, "PF", "/usr/bin"},
		{"credentials", Options{Credentials: true}, "OCF", "/usr/bin"},
		{"both", Options{Preserve: true, Credentials: true}, "POCF", "/usr/bin"},
		{"bindir", Options{BinDir: "/opt/qemu/bin/"}, "F", "/opt/qemu/bin"},
		{"bindir with a colon", Options{BinDir: "/opt/q:emu"}, "F", "/opt/q:emu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tg := range Targets() {
				want := binfmt.Entry{
					Name:        "qemu-" + tg.CPU,
					Type:        binfmt.TypeMagic,
					Magic:       tg.Magic,
					Mask:        tg.Mask,
					Interpreter: tc.bindir + "/qemu-" + tg.Emulator() + "-static",
					Flags:       tc.flags,
				}
				if got := tg.Entry(tc.opts); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Entry = %+v\nwant %+v", tg.CPU, got, want)
				}
				data := Conf(tg, tc.opts)
				lines, errs := binfmt.Parse(bytes.NewReader(data), ConfName(tg.CPU))
				if len(errs) > 0 || len(lines) != 1 {
					t.Errorf("%s: %q parses to %d lines, errors %v", tg.CPU, data, len(lines), errs)
					continue
				}
				if !reflect.DeepEqual(lines[0].Entry, want) {
					t.Errorf("%s: %q reads back as %+v\nwant %+v", tg.CPU, data, lines[0].Entry, want)
				}
				if got, err := binfmt.ParseLine(lines[0].Raw); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s: ParseLine(%q) = %+v, %v", tg.CPU, lines[0].Raw, got, err)
				}
				// A comment line, then the register line, as Fedora's files.
				if !bytes.HasPrefix(data, []byte("# ")) || bytes.Count(data, []byte("\n")) != 2 || lines[0].Num != 2 {
					t.Errorf("%s: want a comment line then the register line, got %q", tg.CPU, data)
				}
			}
		})
	}
	if got := ConfName("aarch64"); got != "qemu-aarch64-static.conf" {
		t.Errorf("ConfName(aarch64) = %q", got)
	}
	if got := ConfName("i486"); got != "qemu-i486-static.conf" {
		t.Errorf("ConfName(i486) = %q", got)
	}
}

func generatedCPUs(t *testing.T, cpus []string, host string, opts Options) []string {
	t.Helper()
	files, err := Generate(cpus, host, opts)
	if err != nil {
		t.Fatalf("Generate(%v, %q, %+v): %v", cpus, host, opts, err)
	}
	var out []string
	for _, f := range files {
		if f.Name != ConfName(f.CPU) {
			t.Errorf("file %q for cpu %q", f.Name, f.CPU)
		}
		out = append(out, f.CPU)
	}
	return out
}

func without(drop ...string) []string {
	return slices.DeleteFunc(CPUs(), func(c string) bool { return slices.Contains(drop, c) })
}

func TestGenerateHostFamily(t *testing.T) {
	for _, tc := range []struct {
		host string
		opts Options
		want []string
	}{
		{"x86_64", Options{}, without("i386", "i486", "x86_64")},
		{"amd64", Options{}, without("i386", "i486", "x86_64")},
		{"i386", Options{}, without("i386", "i486", "x86_64")},
		// Asked for, the family comes back, but never the host's own cpu.
		{"x86_64", Options{IncludeHostFamily: true}, without("x86_64")},
		{"i686", Options{IncludeHostFamily: true}, without("i386", "i486")},
		{"aarch64", Options{}, without("arm", "aarch64")},
		{"arm64", Options{IncludeHostFamily: true}, without("aarch64")},
		{"armv7l", Options{}, without("arm", "aarch64")},
		{"ppc64le", Options{}, without("ppc64le")},
		{"ppc64", Options{}, without("ppc", "ppc64")},
		{"riscv64", Options{}, without("riscv32", "riscv64")},
		{"riscv64", Options{IncludeHostFamily: true}, without("riscv64")},
		{"s390x", Options{}, without("s390x")},
		{"loong64", Options{}, without("loongarch64")},
		{"mips64le", Options{}, without("mips", "mipsel", "mipsn32", "mipsn32el", "mips64", "mips64el")},
		// A family name works as the host too.
		{"ppcle", Options{}, without("ppc64le")},
		{"wasm", Options{}, CPUs()},
	} {
		if got := generatedCPUs(t, nil, tc.host, tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("Generate(all, %q, %+v) gives %v\nwant %v", tc.host, tc.opts, got, tc.want)
		}
	}
}

func TestGenerateSelection(t *testing.T) {
	// Table order, duplicates once, host family still left out.
	got := generatedCPUs(t, []string{"s390x", "i386", "aarch64", "s390x", "i486"}, "x86_64", Options{})
	if want := []string{"s390x", "aarch64"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got = generatedCPUs(t, []string{"i486"}, "x86_64", Options{IncludeHostFamily: true})
	if want := []string{"i486"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	files, err := Generate([]string{"aarch64"}, "x86_64", Options{Preserve: true, BinDir: "/opt/qemu"})
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := Lookup("aarch64")
	if len(files) != 1 || !bytes.Equal(files[0].Data, Conf(tg, Options{Preserve: true, BinDir: "/opt/qemu"})) {
		t.Errorf("Generate does not render Conf: %+v", files)
	}
}

func TestGenerateErrors(t *testing.T) {
	_, err := Generate([]string{"aarch64", "arm64", "nios2"}, "x86_64", Options{})
	if !errors.Is(err, ErrUnknownCPU) {
		t.Fatalf("unknown cpus: error %v, want ErrUnknownCPU", err)
	}
	for _, s := range []string{`"arm64"`, `"nios2"`, "aarch64 aarch64_be"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if strings.Contains(err.Error(), `"aarch64"`) {
		t.Errorf("error %q names a known cpu as unknown", err)
	}

	// The host's own cpu, asked for, is refused rather than dropped;
	// i486 runs on qemu-i386, which is an i386 host's own.
	for _, tc := range []struct {
		cpus []string
		host string
		want string
	}{
		{[]string{"i386", "x86_64"}, "x86_64", "x86_64: the host's own cpu x86_64"},
		{[]string{"aarch64"}, "arm64", "aarch64: the host's own cpu arm64"},
		{[]string{"s390x", "i486", "i386"}, "i686", "i386, i486: the host's own cpu i686"},
	} {
		for _, opts := range []Options{{}, {IncludeHostFamily: true}} {
			_, err := Generate(tc.cpus, tc.host, opts)
			if !errors.Is(err, ErrHostCPU) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Generate(%v, %q, %+v): error %v, want ErrHostCPU containing %q", tc.cpus, tc.host, opts, err, tc.want)
			}
		}
	}

	for _, tc := range []struct {
		name string
		host string
		opts Options
		want string
	}{
		{"empty host", "", Options{}, "host architecture is empty"},
		{"relative bindir", "x86_64", Options{BinDir: "usr/bin"}, `"usr/bin" is not an absolute path`},
		{"newline in bindir", "x86_64", Options{BinDir: "/opt/q\nemu"}, "does not parse"},
	} {
		_, err := Generate([]string{"aarch64"}, tc.host, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
