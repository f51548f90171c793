package rpmfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
)

// compared are the tags that describe a package's content, its
// dependencies and its scripts, which the writer must write exactly as
// rpmbuild writes them for the same content. The rest describe the build
// (RPMVERSION, PLATFORM, OPTFLAGS, COOKIE, the payload's compression),
// rpmbuild's libmagic classification (FILECOLORS, FILECLASS,
// CLASSDICT), or the header layout.
var compared = map[uint32]string{
	tagName: "NAME", tagVersion: "VERSION", tagRelease: "RELEASE", tagArch: "ARCH", tagOS: "OS",
	tagPrein: "PREIN", tagPostin: "POSTIN", tagPreun: "PREUN", tagPostun: "POSTUN",
	tagPreinProg: "PREINPROG", tagPostinProg: "POSTINPROG", tagPreunProg: "PREUNPROG", tagPostunProg: "POSTUNPROG",
	tagRequireName: "REQUIRENAME", tagRequireFlags: "REQUIREFLAGS", tagRequireVersion: "REQUIREVERSION",
	tagProvideName: "PROVIDENAME", tagProvideFlags: "PROVIDEFLAGS", tagProvideVersion: "PROVIDEVERSION",
	tagConflictName: "CONFLICTNAME", tagConflictFlags: "CONFLICTFLAGS", tagConflictVersion: "CONFLICTVERSION",
	tagObsoleteName: "OBSOLETENAME", tagObsoleteFlags: "OBSOLETEFLAGS", tagObsoleteVersion: "OBSOLETEVERSION",
	tagRecommendName: "RECOMMENDNAME", tagRecommendFlags: "RECOMMENDFLAGS", tagRecommendVersion: "RECOMMENDVERSION",
	tagBaseNames: "BASENAMES", tagDirNames: "DIRNAMES", tagDirIndexes: "DIRINDEXES",
	tagFileModes: "FILEMODES", tagFileSizes: "FILESIZES", tagFileDigests: "FILEDIGESTS",
	tagFileUserName: "FILEUSERNAME", tagFileGroupName: "FILEGROUPNAME", tagFileFlags: "FILEFLAGS",
	tagFileVerifyFlags: "FILEVERIFYFLAGS", tagFileDigestAlgo: "FILEDIGESTALGO",
	5066: "FILETRIGGERSCRIPTS", 5067: "FILETRIGGERSCRIPTPROG", 5068: "FILETRIGGERSCRIPTFLAGS",
	5069: "FILETRIGGERNAME", 5070: "FILETRIGGERINDEX", 5071: "FILETRIGGERVERSION", 5072: "FILETRIGGERFLAGS",
	5076: "TRANSFILETRIGGERSCRIPTS", 5077: "TRANSFILETRIGGERSCRIPTPROG", 5078: "TRANSFILETRIGGERSCRIPTFLAGS",
	5079: "TRANSFILETRIGGERNAME", 5080: "TRANSFILETRIGGERINDEX", 5081: "TRANSFILETRIGGERVERSION",
	5082: "TRANSFILETRIGGERFLAGS", 5084: "FILETRIGGERPRIORITIES", 5085: "TRANSFILETRIGGERPRIORITIES",
}

// triggerFixture is a package with every kind of file trigger, two of
// one kind on the same prefix (as a guard around another package's
// trigger has), a Lua body, shell scriptlets, a macros file, a rich and
// a context-qualified requirement: once as a spec for rpmbuild, once as
// nfpm.Info and Options for Write.
func triggerFixture(t *testing.T, dir string) (spec string, info *nfpm.Info, opts Options) {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	macros := write("macros.fixture", "# a comment\n%fixture_requires \\\nRequires(post): /usr/bin/tool \\\n%{nil}\n%__fixture_private 1\n  %fixture_post() echo %{1}\n")
	data := write("data", "data\n")
	scripts := map[string]string{"post": "echo post \"$1\"", "preun": "echo preun \"$1\"", "postun": "echo postun \"$1\""}
	triggers := []FileTrigger{
		{Kind: TransFileTriggerUn, Priority: 1000800, Prefixes: []string{"/usr/lib/binfmt.d", "/etc/binfmt.d"}, Script: "cat >/dev/null\necho un"},
		{Kind: TransFileTriggerIn, Priority: 1000800, Prefixes: []string{"/usr/lib/binfmt.d"}, Script: "echo before"},
		{Kind: TransFileTriggerIn, Priority: 1000600, Prefixes: []string{"/usr/lib/binfmt.d"}, Script: "echo after"},
		{Kind: TransFileTriggerPostUn, Prefixes: []string{"/usr/lib/binfmt.d"}, Script: "echo transpostun"},
		{Kind: FileTriggerIn, Priority: 500, Prefixes: []string{"/usr/lib/binfmt.d"}, Prog: LuaProg, Script: "print(\"in\")"},
		{Kind: FileTriggerUn, Prefixes: []string{"/usr/share/fixture"}, Script: "echo un"},
		{Kind: FileTriggerPostUn, Priority: 10, Prefixes: []string{"/usr/share/fixture"}, Script: "echo postun"},
	}
	requires := []string{"(post) /usr/bin/tool", "(preun,postun) /usr/bin/tool", "(fixture-helper if fixture-extra)"}
	var b strings.Builder
	fmt.Fprintf(&b, `%%global debug_package %%{nil}
%%global _build_id_links none
%%global __os_install_post %%{nil}
%%global _binary_payload w3.zstdio
%%global _buildhost fixture-host
Name: fixture
Version: 1.0
Release: 2
Summary: the fixture
License: MIT
BuildArch: x86_64
Provides: fixture-api = 3
Conflicts: old-fixture < 1.0
Obsoletes: older-fixture
Requires: coreutils >= 8.0
Requires(post): /usr/bin/tool
Requires(preun,postun): /usr/bin/tool
Requires: (fixture-helper if fixture-extra)
%%description
a fixture
%%install
install -D -m 0644 %s %%{buildroot}/usr/lib/rpm/macros.d/macros.fixture
install -D -m 0644 %s %%{buildroot}/usr/share/fixture/data
`, macros, data)
	for _, phase := range []string{"post", "preun", "postun"} {
		fmt.Fprintf(&b, "%%%s\n%s\n", phase, scripts[phase])
	}
	for _, tr := range triggers {
		fmt.Fprintf(&b, "%%%s", tr.Kind)
		if tr.Priority != 0 {
			fmt.Fprintf(&b, " -P %d", tr.Priority)
		}
		if tr.Prog != "" {
			fmt.Fprintf(&b, " -p %s", tr.Prog)
		}
		fmt.Fprintf(&b, " -- %s\n%s\n", strings.Join(tr.Prefixes, " "), tr.Script)
	}
	b.WriteString("%files\n%defattr(-,root,root,-)\n/usr/lib/rpm/macros.d/macros.fixture\n/usr/share/fixture/data\n")
	spec = write("fixture.spec", b.String())

	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	info = &nfpm.Info{
		Name: "fixture", Arch: "x86_64", Platform: "linux", Version: "1.0", Release: "2", VersionSchema: "none",
		Description: "a fixture", License: "MIT", MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends:   []string{"coreutils >= 8.0"},
			Provides:  []string{"fixture-api = 3"},
			Conflicts: []string{"old-fixture < 1.0"},
			Replaces:  []string{"older-fixture"},
			Contents: files.Contents{
				{Source: macros, Destination: "/usr/lib/rpm/macros.d/macros.fixture", FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime}},
				{Source: data, Destination: "/usr/share/fixture/data", FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime}},
			},
			Scripts: nfpm.Scripts{
				PostInstall: write("post.sh", scripts["post"]),
				PreRemove:   write("preun.sh", scripts["preun"]),
				PostRemove:  write("postun.sh", scripts["postun"]),
			},
		},
	}
	info.RPM.BuildHost = "fixture-host"
	info.RPM.Summary = "the fixture"
	for _, r := range requires {
		d, err := ParseRequirement(r)
		if err != nil {
			t.Fatal(err)
		}
		opts.Requires = append(opts.Requires, d)
	}
	opts.Triggers = triggers
	opts.Compressor = fast
	opts.TempDir = dir
	return spec, info, opts
}

// rpmbuildFixture builds spec with rpmbuild -bb in dir and returns the
// binary package.
func rpmbuildFixture(t *testing.T, dir, spec string) string {
	t.Helper()
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		t.Fatal("rpmbuild is missing: apt-get install -y rpm")
	}
	top := filepath.Join(dir, "top")
	cmd := exec.Command("rpmbuild", "-bb", "--nodeps", "--define", "_topdir "+top, spec)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild -bb %s: %v\n%s", spec, err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild wrote %q, want one package", rpms)
	}
	return rpms[0]
}

// TestMatchesRPMBuild builds the same package with rpmbuild and with
// Write and compares every content tag: dependencies with their flags
// (scriptlet interpreters in context, rpmlib() features, the ISA
// provide, rpm_macro() provides), scriptlets and file triggers.
func TestMatchesRPMBuild(t *testing.T) {
	dir := t.TempDir()
	spec, info, opts := triggerFixture(t, dir)
	theirs := rpmbuildFixture(t, dir, spec)
	ours := filepath.Join(dir, FileName(info))
	f, err := os.Create(ours)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, info, opts); err != nil {
		t.Fatal(err)
	}
	f.Close()

	a, b := rawHeader(t, ours), rawHeader(t, theirs)
	var tags []uint32
	for tag := range compared {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	for _, tag := range tags {
		x, inA := a[tag]
		y, inB := b[tag]
		switch {
		case inA != inB:
			t.Errorf("%s: written %v (%s), rpmbuild %v (%s)", compared[tag], inA, x, inB, y)
		case inA && (x.typ != y.typ || !slices.Equal(x.values, y.values)):
			t.Errorf("%s differs:\nwritten:  %s\nrpmbuild: %s", compared[tag], x, y)
		}
	}
	if _, ok := b[5076]; !ok {
		t.Error("rpmbuild wrote no transaction file triggers: the fixture does not test them")
	}
}

func TestMacroNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"%a 1\n%b() x\n", []string{"a", "b"}},
		{"%__private 1\n%_public 1\n", []string{"_public"}},
		{"# %commented 1\n  %indented 1\n", []string{"indented"}},
		{"%multi \\\nline \\\n%notdefined 2\n", []string{"multi"}},
		{"%empty\n%alsoempty   \n", nil},
		{"%opts(n:) %{-n*}\n", []string{"opts"}},
	} {
		if got := MacroNames([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("MacroNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzMacroNames(f *testing.F) {
	f.Add([]byte("%binfmtctl_requires \\\nRequires(post): /usr/bin/binfmtctl \\\n%{nil}\n"))
	f.Add([]byte("%a() x\n%__b 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names := MacroNames(data)
		if !slices.IsSorted(names) {
			t.Fatalf("not sorted: %q", names)
		}
		for i, n := range names {
			if i > 0 && names[i-1] == n {
				t.Fatalf("duplicate %q", n)
			}
			if strings.HasPrefix(n, "__") || !strings.Contains(string(data), "%"+n) {
				t.Fatalf("%q is not a public macro defined in %q", n, data)
			}
		}
	})
}

func TestParseRequirement(t *testing.T) {
	for in, want := range map[string]Dependency{
		"/bin/sh":                   {Name: "/bin/sh"},
		"(post) /usr/bin/binfmtctl": {Name: "/usr/bin/binfmtctl", Flags: SenseScriptPost},
		"(preun,postun) x >= 1.0":   {Name: "x", Version: "1.0", Flags: SenseScriptPreun | SenseScriptPostun | SenseGreater | SenseEqual},
		"(a if b)":                  {Name: "(a if b)"},
		"(pretrans) (a = 1-1 if a)": {Name: "(a = 1-1 if a)", Flags: SensePreTrans},
		"(posttrans,verify) y < 2":  {Name: "y", Version: "2", Flags: SensePostTrans | SenseScriptVerify | SenseLess},
	} {
		got, err := ParseRequirement(in)
		if err != nil || got != want {
			t.Errorf("ParseRequirement(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"(bogus) x", "", "x >=", "(post) "} {
		if _, err := ParseRequirement(in); err == nil {
			t.Errorf("ParseRequirement(%q): no error", in)
		}
	}
}

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"(post) /usr/bin/binfmtctl", "(preun,postun) x >= 1.0", "(a if b)", "x = 1-1", "(post)"} {
		f.Add(s)
	}
	known := SenseLess | SenseGreater | SenseEqual | SensePostTrans | SensePreTrans | SenseInterp |
		SenseScriptPre | SenseScriptPost | SenseScriptPreun | SenseScriptPostun | SenseScriptVerify
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseRequirement(s)
		if err != nil {
			return
		}
		if d.Name == "" || d.Flags&^known != 0 {
			t.Fatalf("ParseRequirement(%q) = %v", s, d)
		}
		if d.Flags&(SenseLess|SenseGreater|SenseEqual) != 0 && d.Version == "" {
			t.Fatalf("ParseRequirement(%q) = %v: an operator without a version", s, d)
		}
	})
}
