package lifecycle

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

func TestParseManifests(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Manifest
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "@foo foo-1-2.x86_64\n/usr/bin/a\n/usr/lib/binfmt.d/a.conf\n",
			want: []Manifest{{Name: "foo", NEVRA: "foo-1-2.x86_64", Files: []string{"/usr/bin/a", "/usr/lib/binfmt.d/a.conf"}}}},
		{name: "no files", in: "@foo foo-1-2.noarch\n(none)\n",
			want: []Manifest{{Name: "foo", NEVRA: "foo-1-2.noarch"}}},
		{name: "two instances", in: "@foo foo-1-2.x86_64\n/a\n@foo foo-1-2.i686\n/a\n",
			want: []Manifest{{Name: "foo", NEVRA: "foo-1-2.x86_64", Files: []string{"/a"}}, {Name: "foo", NEVRA: "foo-1-2.i686", Files: []string{"/a"}}}},
		{name: "file before header", in: "/a\n", wantErr: "before any package header"},
		{name: "relative file", in: "@foo foo-1-2.x86_64\nrel\n", wantErr: "not an absolute path"},
		{name: "bad header", in: "@foo\n", wantErr: "bad header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseManifests(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseManifests(f *testing.F) {
	f.Add("@foo foo-1-2.x86_64\n/usr/bin/a\n/usr/lib/binfmt.d/a.conf\n")
	f.Add("@a b\n(none)\n@c d\n/x\n")
	f.Add("/a\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseManifests(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Name == "" || m.NEVRA == "" {
				t.Fatalf("accepted an empty header: %+v", m)
			}
			for _, f := range m.Files {
				if !strings.HasPrefix(f, "/") {
					t.Fatalf("accepted a relative file %q", f)
				}
			}
		}
	})
}

func TestNameOf(t *testing.T) {
	for in, want := range map[string]string{
		"qemu-user-static-go-1.0-1":        "qemu-user-static-go",
		"qemu-user-static-go-1.0-1.x86_64": "qemu-user-static-go",
		"a-1-2":                            "a",
	} {
		got, err := NameOf(in)
		if err != nil || got != want {
			t.Errorf("NameOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "a-1", "-1-2", "..-1-2", "a/b-1-2"} {
		if got, err := NameOf(bad); err == nil {
			t.Errorf("NameOf(%q) = %q, want an error", bad, got)
		}
	}
}

func TestConfNames(t *testing.T) {
	files := []string{
		"/usr/bin/qemu-aarch64-static",
		"/usr/lib/binfmt.d/qemu-aarch64-static.conf",
		"/usr/lib/binfmt.d/qemu-aarch64-static.conf",
		"/usr/lib/binfmt.d/sub/x.conf",
		"/usr/lib/binfmt.d/readme.txt",
		"/etc/binfmt.d/local.conf",
		"/usr/share/doc/binfmt.d/a.conf",
	}
	got := ConfNames(files, binfmt.ConfigDirs)
	want := []string{"qemu-aarch64-static.conf", "local.conf"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ConfNames = %q, want %q", got, want)
	}
}

func TestParseNEVR(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NEVR
		err  string
	}{
		{in: "x-1-1", want: NEVR{Name: "x", Version: "1", Release: "1"}},
		{in: "x-1-1-1", want: NEVR{Name: "x-1", Version: "1", Release: "1"}},
		{in: "qemu-user-static-go-10.1.2-1.fc43", want: NEVR{Name: "qemu-user-static-go", Version: "10.1.2", Release: "1.fc43"}},
		{in: "x-1:1-1", want: NEVR{Name: "x", Epoch: "1", Version: "1", Release: "1"}},
		{in: "x-007:2.0-3", want: NEVR{Name: "x", Epoch: "7", Version: "2.0", Release: "3"}},
		{in: "x-0:1-1", want: NEVR{Name: "x", Epoch: "0", Version: "1", Release: "1"}},
		{in: "x-:1-1", err: "bad epoch"},
		{in: "x-a:1-1", err: "bad epoch"},
		{in: "x-1:-1", err: "bad epoch"},
		{in: "x-1:2:3-1", err: `stray ":"`},
		{in: "x-1-1:2", err: `stray ":"`},
		{in: "x-1", err: "not name-version-release"},
	} {
		got, err := ParseNEVR(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseNEVR(%q) = %+v, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNEVR(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestPickManifest checks issue 16's point 7: the %post query matches
// the package exactly.
func TestPickManifest(t *testing.T) {
	m := func(name, e, v, r string, tid int64, files ...string) Manifest {
		return Manifest{Name: name, NEVRA: name + "-" + v + "-" + r + ".x86_64", Epoch: e, Version: v, Release: r, InstallTID: tid / 10, Instance: tid % 10, Files: files}
	}
	for _, tc := range []struct {
		name  string
		nevra string
		ms    []Manifest
		want  []string // files; nil: not installed
	}{
		{"exact", "x-1-1", []Manifest{m("x", "0", "1", "1", 5, "/a")}, []string{"/a"}},
		// rpm -q x-1-1 returns x-1 1-1... when a package x-1 exists; the
		// query is by name now, and the name must match too.
		{"a package named x-1", "x-1-1", []Manifest{m("x-1", "0", "1", "5", 5, "/other"), m("x", "0", "1", "1", 6, "/a")}, []string{"/a"}},
		// The label x-1 is also x's name and version: whatever rpm's
		// lookup of x-1 returns, with equal versions and releases only
		// the name tells x-1 1-1 from x 1-1.
		{"x-1 1-1 beside x 1-1", "x-1-1-1", []Manifest{m("x-1", "0", "1", "1", 5, "/mine"), m("x", "0", "1", "1", 6, "/other")}, []string{"/mine"}},
		{"another version", "x-1-1", []Manifest{m("x", "0", "2", "1", 5, "/b")}, nil},
		{"epoch bump, with the epoch", "x-1:1-1", []Manifest{m("x", "0", "1", "1", 5, "/old"), m("x", "1", "1", "1", 9, "/new")}, []string{"/new"}},
		{"epoch bump, old caller without it", "x-1-1", []Manifest{m("x", "0", "1", "1", 5, "/old"), m("x", "1", "1", "1", 9, "/new")}, []string{"/new"}},
		{"epoch downgrade, old caller", "x-1-1", []Manifest{m("x", "1", "1", "1", 5, "/was"), m("x", "0", "1", "1", 9, "/now")}, []string{"/now"}},
		// Two transactions in one second share a transaction id; the
		// database instance tells them apart.
		{"epoch bump within a second", "x-1-1", []Manifest{m("x", "0", "1", "1", 52, "/old"), m("x", "1", "1", "1", 53, "/new")}, []string{"/new"}},
		{"epoch bump, listed newest first", "x-1-1", []Manifest{m("x", "1", "1", "1", 93, "/new"), m("x", "0", "1", "1", 52, "/old")}, []string{"/new"}},
		{"wrong epoch", "x-2:1-1", []Manifest{m("x", "1", "1", "1", 9, "/new")}, nil},
		{"reinstall: two instances of one NEVRA", "x-1-1", []Manifest{m("x", "0", "1", "1", 5, "/a"), m("x", "0", "1", "1", 9, "/a", "/b")}, []string{"/a", "/b"}},
		{"multilib", "x-1-1", []Manifest{m("x", "0", "1", "1", 5, "/a"), m("x", "0", "1", "1", 5, "/a", "/i686")}, []string{"/a", "/i686"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := ParseNEVR(tc.nevra)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pickManifest(tc.nevra, want, tc.ms)
			if tc.want == nil {
				if !errors.Is(err, ErrNotInstalled) {
					t.Fatalf("got %+v, %v; want ErrNotInstalled", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got.Files, tc.want) {
				t.Fatalf("got %+v, %v; want files %q", got, err, tc.want)
			}
		})
	}
}

func TestParseOwners(t *testing.T) {
	out := "@a a-1-1.x86_64 0 1 1 5 1\n/usr/lib/binfmt.d/x.conf\n/usr/bin/a\n" +
		"file /etc/binfmt.d/x.conf is not owned by any package\n" +
		"@b b-1-1.x86_64 0 1 1 6 2\n/usr/lib/binfmt.d/x.conf\n/usr/lib/binfmt.d/b.conf\n"
	got, err := ParseOwners(out, []string{"/usr/lib/binfmt.d/x.conf", "/etc/binfmt.d/x.conf", "/usr/lib/binfmt.d/b.conf", "/run/binfmt.d/gone.conf"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"/usr/lib/binfmt.d/x.conf": {"a", "b"},
		"/etc/binfmt.d/x.conf":     {},
		"/usr/lib/binfmt.d/b.conf": {"b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseOwners = %v, want %v", got, want)
	}
}

// FuzzParseNEVR checks that what ParseNEVR accepts puts back together
// into its input, less the zeros of the epoch, and that NameOf agrees.
func FuzzParseNEVR(f *testing.F) {
	for _, s := range []string{"x-1-1", "x-1:1-1", "a-b-c-2.0-1.fc43", "x-007:1-1", "x-:1-1", "x-1-1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNEVR(s)
		if err != nil {
			return
		}
		name, err := NameOf(s)
		if err != nil || name != n.Name {
			t.Fatalf("ParseNEVR(%q) gives name %q, NameOf %q (%v)", s, n.Name, name, err)
		}
		if n.Version == "" || n.Release == "" || strings.ContainsAny(n.Version+n.Release, ":-") {
			t.Fatalf("ParseNEVR(%q) = %+v", s, n)
		}
		back := n.Name + "-" + n.Version + "-" + n.Release
		if n.Epoch != "" {
			back = n.Name + "-" + n.Epoch + ":" + n.Version + "-" + n.Release
			if strings.Trim(n.Epoch, "0123456789") != "" {
				t.Fatalf("ParseNEVR(%q) gives epoch %q", s, n.Epoch)
			}
			evr := s[len(n.Name)+1:]
			e, _, _ := strings.Cut(evr, ":")
			if strings.TrimLeft(e, "0") != strings.TrimLeft(n.Epoch, "0") || evr[len(e):] != ":"+n.Version+"-"+n.Release {
				t.Fatalf("ParseNEVR(%q) = %+v", s, n)
			}
			return
		}
		if back != s {
			t.Fatalf("ParseNEVR(%q) = %+v, which reads %q", s, n, back)
		}
	})
}

// FuzzParseOwners checks that ParseOwners only ever reports paths it was
// asked about, each owned by a package named in a header.
func FuzzParseOwners(f *testing.F) {
	f.Add("@a a-1-1.x86_64 0 1 1 5 1\n/usr/lib/binfmt.d/x.conf\nfile /etc/binfmt.d/x.conf is not owned by any package\n", "/usr/lib/binfmt.d/x.conf")
	f.Add("file /x is not owned by any package\n@b b\n/x\n", "/x")
	f.Add("", "/x")
	f.Fuzz(func(t *testing.T, out, path string) {
		got, err := ParseOwners(out, []string{path})
		if err != nil {
			return
		}
		for p, owners := range got {
			if p != path {
				t.Fatalf("ParseOwners reports %q, which was not asked about", p)
			}
			for _, o := range owners {
				if !strings.Contains(out, "@"+o+" ") {
					t.Fatalf("owner %q is no header's name in %q", o, out)
				}
			}
		}
	})
}
