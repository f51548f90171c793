package lifecycle

import (
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
