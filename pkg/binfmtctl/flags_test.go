package binfmtctl

import (
	"reflect"
	"strings"
	"testing"
)

func TestFlagSet(t *testing.T) {
	tests := []struct {
		args         []string
		interspersed bool
		dir          string
		json         bool
		rest         []string
		err          string
	}{
		{args: []string{"--dir=/x", "a"}, dir: "/x", rest: []string{"a"}},
		{args: []string{"--dir", "/x", "a", "b"}, dir: "/x", rest: []string{"a", "b"}},
		{args: []string{"--json", "a"}, json: true, rest: []string{"a"}},
		{args: []string{"-j", "a"}, json: true, rest: []string{"a"}},
		{args: []string{"--json=false", "a"}, rest: []string{"a"}},
		{args: []string{"--json=maybe"}, err: `invalid argument "maybe"`},
		{args: []string{"--dir"}, err: "flag needs an argument: --dir"},
		{args: []string{"--nope"}, err: "unknown flag: --nope"},
		{args: []string{"-x"}, err: `unknown shorthand flag: "x"`},
		{args: []string{"---dir", "/x"}, err: "bad flag syntax: ---dir"},
		// "--" ends the flags; "-" alone is an argument.
		{args: []string{"--", "--json"}, rest: []string{"--json"}},
		{args: []string{"-", "--json"}, interspersed: true, json: true, rest: []string{"-"}},
		// Without interspersing, the first argument ends the flags, so that
		// a subcommand's flags reach the subcommand.
		{args: []string{"a", "--json"}, rest: []string{"a", "--json"}},
		{args: []string{"a", "--json", "b"}, interspersed: true, json: true, rest: []string{"a", "b"}},
	}
	for _, tt := range tests {
		f := &flagSet{interspersed: tt.interspersed}
		var dir string
		var json bool
		f.String(&dir, "dir", "DIR", "/default", "a directory")
		f.Bool(&json, "json", "j", "print JSON")
		err := f.Parse(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tt.args, err, tt.err)
			}
			continue
		}
		want := tt.dir
		if want == "" {
			want = "/default"
		}
		if err != nil || dir != want || json != tt.json || !reflect.DeepEqual(f.Args(), tt.rest) {
			t.Errorf("Parse(%q) = %v: dir %q json %v args %q; want dir %q json %v args %q", tt.args, err, dir, json, f.Args(), want, tt.json, tt.rest)
		}
	}
}

func TestFlagUsages(t *testing.T) {
	f := &flagSet{}
	var dir string
	var json bool
	f.String(&dir, "dir", "DIR", "/d", "a directory")
	f.Bool(&json, "json", "j", "print JSON")
	want := "      --dir DIR   a directory (default \"/d\")\n  -j, --json      print JSON\n"
	if got := f.Usages(); got != want {
		t.Errorf("Usages() =\n%s\nwant\n%s", got, want)
	}
}

// FuzzFlagSet checks that Parse never panics, and that what it leaves in
// Args are the given arguments, in order, less the flags it consumed.
func FuzzFlagSet(f *testing.F) {
	f.Add("--dir=/x\x00a", true)
	f.Add("--dir\x00/x\x00--json\x00b", false)
	f.Add("-j\x00--\x00--dir", true)
	f.Add("---\x00-\x00--=", true)
	f.Fuzz(func(t *testing.T, joined string, interspersed bool) {
		args := strings.Split(joined, "\x00")
		fs := &flagSet{interspersed: interspersed}
		var dir string
		var json bool
		fs.String(&dir, "dir", "DIR", "", "")
		fs.Bool(&json, "json", "j", "")
		if err := fs.Parse(args); err != nil {
			return
		}
		// Args is a subsequence of args.
		i := 0
		for _, a := range fs.Args() {
			for i < len(args) && args[i] != a {
				i++
			}
			if i == len(args) {
				t.Fatalf("Parse(%q): Args %q is not a subsequence of the input", args, fs.Args())
			}
			i++
		}
	})
}
