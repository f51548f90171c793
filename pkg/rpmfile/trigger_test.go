package rpmfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// watcher is a package whose only content is file triggers on
// /usr/share/watched: two transaction triggers at different priorities
// that log their order and the files they were given, an un-trigger that
// keeps its standard input, and a per-package Lua trigger.
func watcher(t *testing.T, dir string) string {
	t.Helper()
	info := &nfpm.Info{
		Name: "watcher", Arch: "x86_64", Platform: "linux", Version: "1", Release: "1", VersionSchema: "none",
		Description: "file trigger test", License: "MIT", MTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	info.RPM.BuildHost = "test"
	p := filepath.Join(dir, FileName(info))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = Write(f, info, Options{Compressor: fast, TempDir: dir, Triggers: []FileTrigger{
		{Kind: TransFileTriggerIn, Priority: 100, Prefixes: []string{"/usr/share/watched"}, Script: "echo in-100 >>/var/tmp/order"},
		{Kind: TransFileTriggerIn, Priority: 2000, Prefixes: []string{"/usr/share/watched"}, Script: "echo in-2000 >>/var/tmp/order\ncat >>/var/tmp/in-files"},
		{Kind: TransFileTriggerUn, Prefixes: []string{"/usr/share/watched"}, Script: "cat >>/var/tmp/un-files"},
		{Kind: FileTriggerIn, Prefixes: []string{"/usr/share/watched"}, Prog: LuaProg,
			Script: `local f = io.open("/var/tmp/lua-in", "a"); f:write("lua\n"); f:close()`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTriggersReadBack checks that rpm reads the written triggers back as
// they were declared.
func TestTriggersReadBack(t *testing.T) {
	sandbox.Require(t, "rpm", "rpm")
	p := watcher(t, t.TempDir())
	out, err := exec.Command("rpm", "-qp", "--filetriggers", p).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp --filetriggers: %v\n%s", err, out)
	}
	for _, want := range []string{
		"filetriggerin scriptlet (using <lua>) -- /usr/share/watched\nlocal f",
		"transfiletriggerin scriptlet (using /bin/sh) -- /usr/share/watched\necho in-100",
		"transfiletriggerin scriptlet (using /bin/sh) -- /usr/share/watched\necho in-2000",
		"transfiletriggerun scriptlet (using /bin/sh) -- /usr/share/watched\ncat >>/var/tmp/un-files",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rpm -qp --filetriggers lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command("rpm", "-qp", "--qf", "[%{TRANSFILETRIGGERPRIORITIES}\n]", p).CombinedOutput()
	if err != nil || string(out) != "100\n2000\n1000000\n" {
		t.Errorf("transaction trigger priorities: %v %q, want 100, 2000 and the default", err, out)
	}
}

// TestTriggersFire installs the watcher, then packages under its prefix,
// through dnf and through the rpm CLI, in a disposable root of each stack
// (rpm 4.18 and dnf 4; rpm 6.1 and dnf5): each trigger runs, in priority
// order, with the files on standard input.
func TestTriggersFire(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { triggersFire(t, st) })
	}
}

func triggersFire(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	root := ns.DNFRootOn(st)
	dir := t.TempDir()
	if out, err := root.RPM("-i", watcher(t, dir)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	watched := func(name string) string {
		return sandbox.BuildRPM(t, sandbox.PackageSpec{Name: name, Version: "1", Files: []sandbox.File{
			{Dst: "/usr/share/watched/" + name, Content: []byte(name + "\n")},
		}})
	}
	read := func(p string) string {
		b, _ := os.ReadFile(root.Path(p))
		os.Remove(root.Path(p))
		return string(b)
	}
	for _, tool := range []struct {
		name            string
		install, remove func(string) (string, error)
	}{
		{"dnf", func(p string) (string, error) { return root.DNF("install", p) }, func(n string) (string, error) { return root.DNF("remove", n) }},
		{"rpm", func(p string) (string, error) { return root.RPM("-i", p) }, func(n string) (string, error) { return root.RPM("-e", n) }},
	} {
		name := "watched-" + tool.name
		if out, err := tool.install(watched(name)); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// A higher priority runs first.
		if got := read("/var/tmp/order"); got != "in-2000\nin-100\n" {
			t.Errorf("%s install: transaction triggers ran %q, want in-2000 then in-100", tool.name, got)
		}
		if got := read("/var/tmp/in-files"); got != "/usr/share/watched/"+name+"\n" {
			t.Errorf("%s install: %%transfiletriggerin got %q on stdin", tool.name, got)
		}
		if got := read("/var/tmp/lua-in"); got != "lua\n" {
			t.Errorf("%s install: the Lua %%filetriggerin wrote %q", tool.name, got)
		}
		if out, err := tool.remove(name); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if got := read("/var/tmp/un-files"); got != "/usr/share/watched/"+name+"\n" {
			t.Errorf("%s remove: %%transfiletriggerun got %q on stdin", tool.name, got)
		}
	}
}
