package binfmt_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// tree writes files under root. A value of "->TARGET" makes a symlink.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, text := range files {
		full := filepath.Join(root, p)
		if target, ok := strings.CutPrefix(text, "->"); ok {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeFile(t, full, text)
	}
}

func TestConfigLookupPrecedence(t *testing.T) {
	all := []string{"/etc/binfmt.d/x.conf", "/run/binfmt.d/x.conf", "/usr/local/lib/binfmt.d/x.conf", "/usr/lib/binfmt.d/x.conf"}
	for i, winner := range all {
		t.Run([]string{"etc", "run", "usr-local-lib", "usr-lib"}[i], func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{}
			for _, p := range all[i:] {
				files[p] = ":from" + strings.ReplaceAll(filepath.Dir(p), "/", "-") + ":E::x::/bin/sh:\n"
			}
			tree(t, root, files)
			c := binfmt.Config{Root: root}
			f, err := c.Lookup("x.conf")
			if err != nil {
				t.Fatal(err)
			}
			want := binfmt.File{Name: "x.conf", Path: winner, Shadowed: all[i+1:]}
			if len(want.Shadowed) == 0 {
				want.Shadowed = nil
			}
			if !reflect.DeepEqual(f, want) {
				t.Errorf("Lookup = %+v, want %+v", f, want)
			}
			lines, errs := c.Load(f)
			if len(errs) != 0 || len(lines) != 1 || lines[0].File != winner {
				t.Fatalf("Load = %+v, %q", lines, errs)
			}
			if want := "from" + strings.ReplaceAll(filepath.Dir(winner), "/", "-"); lines[0].Name != want {
				t.Errorf("Load gave entry %q, want %q", lines[0].Name, want)
			}
		})
	}
}

func TestConfigMasks(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/usr/lib/binfmt.d/devnull.conf": ":devnull:E::a::/bin/sh:\n",
		"/etc/binfmt.d/devnull.conf":     "->/dev/null",
		"/usr/lib/binfmt.d/empty.conf":   ":empty:E::a::/bin/sh:\n",
		"/run/binfmt.d/empty.conf":       "",
		// A symlink to an empty file is empty once followed.
		"/usr/lib/binfmt.d/linkempty.conf":       ":linkempty:E::a::/bin/sh:\n",
		"/usr/local/lib/binfmt.d/linkempty.conf": "->" + filepath.Join(root, "empty-target"),
		"/empty-target":                          "",
		// A symlink to a real file is not a mask.
		"/etc/binfmt.d/link.conf": "->" + filepath.Join(root, "real-target"),
		"/real-target":            ":link:E::a::/bin/sh:\n",
		// A comment-only file is not empty and masks nothing either;
		// it just defines nothing.
		"/etc/binfmt.d/comments.conf":     "# nothing\n",
		"/usr/lib/binfmt.d/comments.conf": ":comments:E::a::/bin/sh:\n",
		// systemd's null_or_empty takes any character device for a mask.
		"/usr/lib/binfmt.d/zero.conf": ":zero:E::a::/bin/sh:\n",
		"/etc/binfmt.d/zero.conf":     "->/dev/zero",
	})
	c := binfmt.Config{Root: root}
	for name, wantMasked := range map[string]bool{
		"devnull.conf": true, "empty.conf": true, "linkempty.conf": true, "link.conf": false, "comments.conf": false,
		"zero.conf": true,
	} {
		f, err := c.Lookup(name)
		if err != nil {
			t.Errorf("Lookup(%q): %v", name, err)
			continue
		}
		if f.Masked != wantMasked {
			t.Errorf("Lookup(%q).Masked = %v, want %v (%+v)", name, f.Masked, wantMasked, f)
		}
		lines, errs := c.Load(f)
		if len(errs) != 0 {
			t.Errorf("Load(%q): %q", name, errs)
		}
		if wantMasked || name == "comments.conf" {
			if len(lines) != 0 {
				t.Errorf("Load(%q) = %+v, want nothing", name, lines)
			}
		} else if len(lines) != 1 || lines[0].Name != "link" {
			t.Errorf("Load(%q) = %+v, want the entry link", name, lines)
		}
	}
}

func TestConfigResolve(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/etc/binfmt.d/x.conf":     ":etc:E::a::/bin/sh:\n",
		"/usr/lib/binfmt.d/x.conf": ":usr:E::a::/bin/sh:\n",
		"/opt/elsewhere/y.conf":    ":y:E::a::/bin/sh:\n",
		"/etc/binfmt.d/null.conf":  "->/dev/null",
	})
	c := binfmt.Config{Root: root}

	// A bare name goes through the lookup.
	f, err := c.Resolve("x.conf")
	if err != nil || f.Path != "/etc/binfmt.d/x.conf" {
		t.Errorf("Resolve(x.conf) = %+v, %v; want /etc/binfmt.d/x.conf", f, err)
	}
	// An absolute path is used as it is, even when overridden, as
	// systemd-binfmt /usr/lib/binfmt.d/x.conf does.
	f, err = c.Resolve("/usr/lib/binfmt.d/x.conf")
	if err != nil || f.Path != "/usr/lib/binfmt.d/x.conf" || f.Name != "x.conf" || f.Masked {
		t.Errorf("Resolve(/usr/lib/binfmt.d/x.conf) = %+v, %v", f, err)
	}
	lines, errs := c.Load(f)
	if len(errs) != 0 || len(lines) != 1 || lines[0].Name != "usr" {
		t.Errorf("Load(/usr/lib/binfmt.d/x.conf) = %+v, %q", lines, errs)
	}
	f, err = c.Resolve("/opt/elsewhere/y.conf")
	if err != nil || f.Path != "/opt/elsewhere/y.conf" {
		t.Errorf("Resolve(/opt/elsewhere/y.conf) = %+v, %v", f, err)
	}
	f, err = c.Resolve("/etc/binfmt.d/null.conf")
	if err != nil || !f.Masked {
		t.Errorf("Resolve(/etc/binfmt.d/null.conf) = %+v, %v; want masked", f, err)
	}

	for _, bad := range []struct{ arg, text string }{
		{"missing.conf", `"missing.conf"`},
		{"/etc/binfmt.d/missing.conf", `"/etc/binfmt.d/missing.conf"`},
		{"sub/x.conf", `"sub/x.conf"`},
		{"/etc/binfmt.d", "directory"},
	} {
		_, err := c.Resolve(bad.arg)
		if err == nil || !strings.Contains(err.Error(), bad.text) {
			t.Errorf("Resolve(%q) = %v, want an error containing %s", bad.arg, err, bad.text)
		}
	}
	if _, err := c.Resolve("missing.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve(missing.conf) = %v, want fs.ErrNotExist", err)
	}
	if _, err := c.Resolve("/etc/binfmt.d/missing.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve(/etc/binfmt.d/missing.conf) = %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := c.Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
}

func TestConfigFiles(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/usr/lib/binfmt.d/b.conf":       ":b:E::b::/bin/sh:\n",
		"/usr/lib/binfmt.d/a.conf":       ":a:E::a::/bin/sh:\n",
		"/usr/lib/binfmt.d/c.conf":       ":c:E::c::/bin/sh:\n",
		"/usr/local/lib/binfmt.d/a.conf": ":a2:E::a::/bin/sh:\n",
		"/run/binfmt.d/d.conf":           ":d:E::d::/bin/sh:\n",
		"/etc/binfmt.d/c.conf":           "->/dev/null",
		"/etc/binfmt.d/notes.txt":        "not a conf file\n",
		"/etc/binfmt.d/e.conf.rpmsave":   ":e:E::e::/bin/sh:\n",
		"/etc/binfmt.d/e.conf~":          ":e:E::e::/bin/sh:\n",
	})
	if err := os.MkdirAll(filepath.Join(root, "/etc/binfmt.d/dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := binfmt.Config{Root: root}.Files()
	if err != nil {
		t.Fatal(err)
	}
	want := []binfmt.File{
		{Name: "a.conf", Path: "/usr/local/lib/binfmt.d/a.conf", Shadowed: []string{"/usr/lib/binfmt.d/a.conf"}},
		{Name: "b.conf", Path: "/usr/lib/binfmt.d/b.conf"},
		{Name: "c.conf", Path: "/etc/binfmt.d/c.conf", Masked: true, Shadowed: []string{"/usr/lib/binfmt.d/c.conf"}},
		{Name: "d.conf", Path: "/run/binfmt.d/d.conf"},
	}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("Files()\n got %+v\nwant %+v", files, want)
	}
}

// TestConfigFilesSkipsHidden checks that Files ignores hidden files, as
// systemd's conf_files_list does (hidden_or_backup_file). Verified with
// systemd 252: "systemd-binfmt --cat-config" does not show
// /etc/binfmt.d/.hidden.conf, and systemd-binfmt does not apply it at boot.
func TestConfigFilesSkipsHidden(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/etc/binfmt.d/.hidden.conf": ":hidden:E::h::/bin/sh:\n",
		"/etc/binfmt.d/visible.conf": ":visible:E::v::/bin/sh:\n",
	})
	files, err := binfmt.Config{Root: root}.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if !reflect.DeepEqual(names, []string{"visible.conf"}) {
		t.Errorf("Files() = %q, want only visible.conf", names)
	}
}

func TestConfigFilesEmptyRoot(t *testing.T) {
	files, err := binfmt.Config{Root: t.TempDir()}.Files()
	if err != nil || len(files) != 0 {
		t.Errorf("Files() of an empty root = %+v, %v", files, err)
	}
}

func TestConfigFilesUnreadableDir(t *testing.T) {
	root := t.TempDir()
	// A file where a directory belongs cannot be listed.
	tree(t, root, map[string]string{"/run/binfmt.d": "not a directory"})
	_, err := binfmt.Config{Root: root}.Files()
	if err == nil || !strings.Contains(err.Error(), `"/run/binfmt.d"`) {
		t.Errorf("Files() = %v, want an error naming /run/binfmt.d", err)
	}
}

// TestConfigLoadNamesSystemPath checks that errors and lines name the
// path as the system sees it, not with the root prefix.
func TestConfigLoadNamesSystemPath(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/etc/binfmt.d/x.conf": "# header\n:good:E::g::/bin/sh:\n:bad:E::b::/bin/sh:Q\n",
	})
	c := binfmt.Config{Root: root}
	f, err := c.Lookup("x.conf")
	if err != nil {
		t.Fatal(err)
	}
	lines, errs := c.Load(f)
	if len(lines) != 1 || lines[0].File != "/etc/binfmt.d/x.conf" || lines[0].Num != 2 {
		t.Errorf("Load lines = %+v", lines)
	}
	if len(errs) != 1 {
		t.Fatalf("Load errors = %q, want 1", errs)
	}
	if msg := errs[0].Error(); !strings.HasPrefix(msg, "/etc/binfmt.d/x.conf:3: ") || strings.Contains(msg, root) {
		t.Errorf("Load error = %q, want it to start with /etc/binfmt.d/x.conf:3: and not show %s", msg, root)
	}
	if !errors.Is(errs[0], binfmt.ErrInvalid) {
		t.Errorf("Load error %q does not wrap ErrInvalid", errs[0])
	}

	// A dangling link is not a mask, and reading it fails.
	tree(t, root, map[string]string{"/etc/binfmt.d/dangling.conf": "->/nonexistent/file"})
	f, err = c.Lookup("dangling.conf")
	if err != nil || f.Masked {
		t.Fatalf("Lookup(dangling.conf) = %+v, %v", f, err)
	}
	if _, errs := c.Load(f); len(errs) != 1 || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("Load(dangling.conf) errors = %q, want one wrapping fs.ErrNotExist", errs)
	}
}

func TestConfigRootSlash(t *testing.T) {
	// Root "" and "/" mean the running system. The name is one no system
	// has, so this reads the host's directories without depending on them.
	for _, root := range []string{"", "/"} {
		_, err := binfmt.Config{Root: root}.Lookup("qemu-user-static-go-test-no-such-file.conf")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Config{Root: %q}.Lookup(missing) = %v, want fs.ErrNotExist", root, err)
		}
	}
}
