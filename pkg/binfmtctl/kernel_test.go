package binfmtctl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// These tests run binfmtctl against the real kernel, each in a private
// user and mount namespace with its own binfmt_misc (package sandbox).

const (
	aarch64Magic = `\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00`
	aarch64Mask  = `\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`
)

func aarch64Line(flags string) string {
	return ":qemu-aarch64:M::" + aarch64Magic + ":" + aarch64Mask + ":/usr/bin/qemu-aarch64-static:" + flags
}

func writeRegister(t *testing.T, dir, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "register"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatalf("registering %q: %v", s, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// binfmtctlIn returns a function that runs binfmtctl on the binfmt_misc
// at dir, with a private state directory.
func binfmtctlIn(t *testing.T, dir string) func(args ...string) result {
	state := filepath.Join(t.TempDir(), "state")
	return func(args ...string) result {
		return run(append([]string{"--binfmt-dir", dir, "--state-dir", state}, args...)...)
	}
}

// TestRegisterRunUnregister is the life of one entry through the command
// line, with a real foreign program and an unrelated entry that must not
// change.
func TestRegisterRunUnregister(t *testing.T) {
	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
	hello := sandbox.CrossBuild(t, "arm64", sandbox.HelloSource("hello from arm64"))
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	dir := ns.BinfmtDir
	bctl := binfmtctlIn(t, dir)

	// Another tool's entries, registered before.
	writeRegister(t, dir, ":unrelated:E::zz::/usr/bin/other:")
	writeRegister(t, dir, `|unrelated-m|M|3|\x01\x02|\xff\x0f|/usr/bin/other|P`)
	if err := os.WriteFile(filepath.Join(dir, "unrelated-m"), []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	snapshot := map[string][]byte{}
	for _, n := range []string{"unrelated", "unrelated-m", "status"} {
		snapshot[n] = readFile(t, filepath.Join(dir, n))
	}

	conf := filepath.Join(t.TempDir(), "qemu-aarch64-static.conf")
	writeFile(t, conf, "# qemu-aarch64\n"+aarch64Line("F")+"\n")

	// Unregistered, the kernel does not know the format.
	if _, err := exec.Command(hello).Output(); !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("running the arm64 program before registering: %v, want exec format error", err)
	}

	r := bctl("register", conf)
	if r.code != 0 || r.stdout != "qemu-aarch64: registered ("+conf+":2)\n" || r.stderr != "" {
		t.Fatalf("register: %s", r)
	}
	out, err := exec.Command(hello).CombinedOutput()
	if err != nil || string(out) != "hello from arm64\n" {
		t.Fatalf("running the arm64 program: %v, output %q", err, out)
	}

	r = bctl("find", hello)
	if r.code != 0 || r.stdout != hello+": qemu-aarch64 (interpreter /usr/bin/qemu-aarch64-static, flags \"F\")\n" {
		t.Errorf("find: %s", r)
	}
	r = bctl("find", conf)
	if r.code != 1 || r.stdout != conf+": no binfmt_misc entry handles it\n" {
		t.Errorf("find of a text file: %s", r)
	}

	r = bctl("status")
	if r.code != 0 {
		t.Fatalf("status: %s", r)
	}
	var row []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "qemu-aarch64" {
			row = f
		}
	}
	// MATCH decodes the ELF magic: "ELF 64-bit LSB aarch64".
	if len(row) < 9 || row[1] != "yes" || row[2] != "/usr/bin/qemu-aarch64-static" || row[3] != "yes" || row[4] != "F" || strings.Join(row[5:9], " ") != "ELF 64-bit LSB aarch64" {
		t.Errorf("status row for qemu-aarch64 = %q\n%s", row, r.stdout)
	}
	for _, n := range []string{"unrelated", "unrelated-m"} {
		if !strings.Contains(r.stdout, "\n"+n+" ") {
			t.Errorf("status does not list %s:\n%s", n, r.stdout)
		}
	}

	r = bctl("status", "--json", "qemu-aarch64")
	var report struct {
		BinfmtDir string `json:"binfmt_dir"`
		Mounted   bool   `json:"mounted"`
		Enabled   bool   `json:"enabled"`
		Entries   []map[string]any
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || r.code != 0 {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	if report.BinfmtDir != dir || !report.Mounted || !report.Enabled || len(report.Entries) != 1 {
		t.Fatalf("status --json = %+v", report)
	}
	for k, want := range map[string]any{
		"name": "qemu-aarch64", "enabled": true, "type": "magic", "interpreter": "/usr/bin/qemu-aarch64-static",
		"interpreter_exists": true, "flags": "F", "offset": float64(0),
		"magic": "7f454c460201010000000000000000000200b700", "mask": "ffffffffffffff00fffffffffffffffffeffffff",
	} {
		if got := report.Entries[0][k]; got != want {
			t.Errorf("status --json: %s = %#v, want %#v", k, got, want)
		}
	}
	if r := bctl("status", "missing"); r.code != 1 {
		t.Errorf("status of a missing entry: %s", r)
	}

	// Applying the same file again leaves the entry alone.
	entryFile := filepath.Join(dir, "qemu-aarch64")
	fi1, _ := os.Stat(entryFile)
	r = bctl("register", conf)
	if r.code != 0 || r.stdout != "qemu-aarch64: unchanged ("+conf+":2)\n" {
		t.Errorf("register again: %s", r)
	}
	if fi2, _ := os.Stat(entryFile); !os.SameFile(fi1, fi2) {
		t.Errorf("register of an unchanged entry re-created its file")
	}

	// A changed definition replaces the entry.
	writeFile(t, conf, aarch64Line("")+"\n")
	r = bctl("register", conf)
	if r.code != 0 || r.stdout != "qemu-aarch64: replaced ("+conf+":1)\n" {
		t.Errorf("register of a changed file: %s", r)
	}
	if got := string(readFile(t, entryFile)); !strings.Contains(got, "flags: \n") {
		t.Errorf("after replacing, entry file:\n%s", got)
	}
	writeFile(t, conf, aarch64Line("F")+"\n")
	if r := bctl("register", conf); r.code != 0 || !strings.Contains(r.stdout, "replaced") {
		t.Errorf("register with F again: %s", r)
	}

	// Disabled, the program does not run and find says so.
	if r := bctl("disable", "qemu-aarch64"); r.code != 0 || r.stdout != "qemu-aarch64: disabled\n" {
		t.Errorf("disable: %s", r)
	}
	if _, err := exec.Command(hello).Output(); !errors.Is(err, unix.ENOEXEC) {
		t.Errorf("running the arm64 program with its entry disabled: %v, want exec format error", err)
	}
	if r := bctl("find", hello); r.code != 1 || !strings.Contains(r.stdout, "no binfmt_misc entry handles it") {
		t.Errorf("find with the entry disabled: %s", r)
	}
	// A disabled entry is not "right": register enables it again, as
	// systemd-binfmt would.
	if r := bctl("register", conf); r.code != 0 || !strings.Contains(r.stdout, "replaced") {
		t.Errorf("register of a disabled entry: %s", r)
	}
	if r := bctl("disable", "qemu-aarch64"); r.code != 0 {
		t.Errorf("disable: %s", r)
	}
	if r := bctl("enable", "qemu-aarch64"); r.code != 0 || r.stdout != "qemu-aarch64: enabled\n" {
		t.Errorf("enable: %s", r)
	}
	if out, err := exec.Command(hello).Output(); err != nil || string(out) != "hello from arm64\n" {
		t.Errorf("running the arm64 program after enable: %v, %q", err, out)
	}

	r = bctl("unregister", "qemu-aarch64")
	if r.code != 0 || r.stdout != "qemu-aarch64: unregistered\n" || r.stderr != "" {
		t.Errorf("unregister: %s", r)
	}
	_, err = exec.Command(hello).Output()
	if err == nil || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("running the arm64 program after unregister: %v, want exec format error", err)
	}
	if exists(entryFile) {
		t.Errorf("%s still exists", entryFile)
	}

	r = bctl("unregister", "qemu-aarch64")
	oneLineError(t, r, 1, `unregistering "qemu-aarch64"`, "no such entry")
	// Each name is tried: the missing one fails the command, the other
	// is removed.
	writeRegister(t, dir, ":extra:E::extra::/bin/sh:")
	r = bctl("unregister", "missing", "extra")
	if r.code != 1 || r.stdout != "extra: unregistered\n" || !strings.Contains(r.stderr, `"missing"`) {
		t.Errorf("unregister missing extra: %s", r)
	}
	for _, verb := range []string{"enable", "disable"} {
		oneLineError(t, bctl(verb, "missing"), 1, `"missing"`, "no such entry")
	}

	for n, b := range snapshot {
		if got := readFile(t, filepath.Join(dir, n)); !bytes.Equal(got, b) {
			t.Errorf("%s changed:\n%s\nwas\n%s", n, got, b)
		}
	}
}

// TestRegisterBadLineKeepsGood checks that one bad line or file does not
// stop the good ones, as in systemd-binfmt, and that the exit code still
// says something failed.
func TestRegisterBadLineKeepsGood(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bctl := binfmtctlIn(t, ns.BinfmtDir)
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "mixed.conf")
	writeFile(t, conf, ":good1:E::g1::/bin/sh:\n:bad:E::b::/bin/sh:Z\n\n:good2:M::G2::/bin/sh:\n:toolong:"+strings.Repeat("x", 2000)+"\n")
	good := filepath.Join(tmp, "good.conf")
	writeFile(t, good, ":good3:E::g3::/bin/sh:\n")

	r := bctl("register", conf, filepath.Join(tmp, "missing.conf"), good)
	if r.code != 1 {
		t.Errorf("exit code %d, want 1\n%s", r.code, r)
	}
	wantOut := "good1: registered (" + conf + ":1)\ngood2: registered (" + conf + ":4)\ngood3: registered (" + good + ":1)\n"
	if r.stdout != wantOut {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, wantOut)
	}
	errLines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	want := []string{
		"binfmtctl: " + conf + ":2: invalid entry: unknown flag 'Z'",
		"binfmtctl: " + conf + ":5: invalid entry: line is 2009 bytes",
		"binfmtctl: resolving binfmt.d file \"" + filepath.Join(tmp, "missing.conf") + "\"",
	}
	if len(errLines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(errLines), len(want), r.stderr)
	}
	for i := range want {
		if !strings.HasPrefix(errLines[i], want[i]) {
			t.Errorf("stderr line %d = %q, want it to start with %q", i+1, errLines[i], want[i])
		}
	}
	for _, n := range []string{"good1", "good2", "good3"} {
		if !exists(filepath.Join(ns.BinfmtDir, n)) {
			t.Errorf("%s is not registered", n)
		}
	}
	for _, n := range []string{"bad", "toolong"} {
		if exists(filepath.Join(ns.BinfmtDir, n)) {
			t.Errorf("%s is registered", n)
		}
	}
}

// TestRegisterRefusesUnsafeInterpreter checks the C and O refusals end to
// end: nothing is registered and the one error line names the bad path.
func TestRegisterRefusesUnsafeInterpreter(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bctl := binfmtctlIn(t, ns.BinfmtDir)
	// A root-owned directory tree whose parents are root's too (a
	// t.TempDir sits below the world-writable /tmp).
	base := "/usr/local/lib/binfmtctl-test"
	ns.Tmpfs(base)
	mk := func(p string, mode os.FileMode, uid int) string {
		t.Helper()
		full := filepath.Join(base, p)
		if mode.IsDir() {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, full, "#!/bin/sh\necho interp\n")
		}
		if err := os.Chmod(full, mode.Perm()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(full, uid, 0); err != nil {
			t.Skipf("cannot chown to uid %d in the namespace (only real root gets a full id map): %v", uid, err)
		}
		return full
	}
	goodInterp := mk("good", 0o755, 0)
	groupW := mk("groupw", 0o775, 0)
	userOwned := mk("user", 0o755, 1000)
	mk("ww", os.ModeDir|0o777, 0)
	wwInterp := mk("ww/interp", 0o755, 0)
	tmpInterp := filepath.Join(t.TempDir(), "interp")
	writeFile(t, tmpInterp, "#!/bin/sh\n")
	if err := os.Chmod(tmpInterp, 0o755); err != nil {
		t.Fatal(err)
	}

	conf := filepath.Join(t.TempDir(), "c.conf")
	for _, tt := range []struct {
		interp, flags string
		bad, why      string
	}{
		{groupW, "C", groupW, "writable by group or others (mode 0775)"},
		{userOwned, "OC", userOwned, "owned by uid 1000, not root"},
		{wwInterp, "O", filepath.Dir(wwInterp), "writable by group or others (mode 0777)"},
		{tmpInterp, "CF", "/tmp", "writable by group or others (mode 0777)"},
	} {
		writeFile(t, conf, ":unsafe:E::u::"+tt.interp+":"+tt.flags+"\n")
		r := bctl("register", conf)
		oneLineError(t, r, 1, conf+":1", "unsafe interpreter", `"`+tt.bad+`"`, tt.why)
		if exists(filepath.Join(ns.BinfmtDir, "unsafe")) {
			t.Errorf("entry with interpreter %s and flags %s was registered", tt.interp, tt.flags)
			bctl("unregister", "unsafe")
		}
	}
	writeFile(t, conf, ":safe:E::s::"+goodInterp+":OC\n")
	if r := bctl("register", conf); r.code != 0 || r.stderr != "" {
		t.Errorf("register of a safe C entry: %s", r)
	}
}

func TestRegisterFMissingInterpreter(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bctl := binfmtctlIn(t, ns.BinfmtDir)
	conf := filepath.Join(t.TempDir(), "f.conf")
	writeFile(t, conf, ":fmissing:E::fm::/nonexistent/interp:F\n")
	r := bctl("register", conf)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 1 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "binfmtctl: warning: ") || !strings.Contains(lines[0], "/nonexistent/interp") || !strings.Contains(lines[0], "flag F") ||
		!strings.Contains(lines[1], conf+":1") || !strings.Contains(lines[1], "interpreter does not exist") {
		t.Errorf("register with F and a missing interpreter: %s\nwant exit 1, a warning and an error naming the interpreter", r)
	}
	if exists(filepath.Join(ns.BinfmtDir, "fmissing")) {
		t.Errorf("fmissing was registered")
	}
}

func TestReadOnlyBinfmt(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	bctl := binfmtctlIn(t, ns.BinfmtDir)
	writeRegister(t, ns.BinfmtDir, ":a:E::a::/bin/sh:")
	before := readFile(t, filepath.Join(ns.BinfmtDir, "a"))
	ns.RemountReadOnly(ns.BinfmtDir)
	conf := filepath.Join(t.TempDir(), "b.conf")
	writeFile(t, conf, ":b:E::b::/bin/sh:\n")
	oneLineError(t, bctl("register", conf), 1, `registering "b"`, "read-only")
	oneLineError(t, bctl("unregister", "a"), 1, `unregistering "a"`, "read-only")
	oneLineError(t, bctl("disable", "a"), 1, `disabling "a"`, "read-only")
	if r := bctl("status"); r.code != 0 {
		t.Errorf("status on a read-only binfmt_misc: %s", r)
	}
	if got := readFile(t, filepath.Join(ns.BinfmtDir, "a")); !bytes.Equal(got, before) {
		t.Errorf("entry a changed on a read-only mount")
	}
}

func TestPermissionDenied(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	// A second mount of the namespace's table, at a path the other user
	// can reach (the sandbox's own directory is root's alone).
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := binfmt.Mount(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	bctl := binfmtctlIn(t, dir)
	writeRegister(t, ns.BinfmtDir, ":a:E::a::/bin/sh:")
	conf := filepath.Join(dir+"-conf", "b.conf")
	writeFile(t, conf, ":b:E::b::/bin/sh:\n")
	if err := unix.Setresgid(-1, 1000, 0); err != nil {
		t.Skipf("cannot switch to gid 1000 in the namespace (only real root gets a full id map): %v", err)
	}
	if err := unix.Setresuid(-1, 1000, 0); err != nil {
		t.Skipf("cannot switch to uid 1000 in the namespace (only real root gets a full id map): %v", err)
	}
	register, unregister := bctl("register", conf), bctl("unregister", "a")
	if err := unix.Setresuid(-1, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setresgid(-1, 0, 0); err != nil {
		t.Fatal(err)
	}
	oneLineError(t, register, 1, `registering "b"`, "permission denied")
	oneLineError(t, unregister, 1, `unregistering "a"`, "permission denied")
	if !exists(filepath.Join(ns.BinfmtDir, "a")) || exists(filepath.Join(ns.BinfmtDir, "b")) {
		t.Errorf("the table changed without permission")
	}
}

// TestRegisterMount checks --mount: binfmt_misc is mounted where it was
// missing, then the file is applied.
func TestRegisterMount(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	dir := ns.TempDir()
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	conf := filepath.Join(t.TempDir(), "m.conf")
	writeFile(t, conf, ":m:E::m::/bin/sh:\n")
	bctl := binfmtctlIn(t, dir)
	oneLineError(t, bctl("register", conf), 1, "not mounted")
	if r := bctl("register", "--mount", conf); r.code != 0 || r.stdout != "m: registered ("+conf+":1)\n" {
		t.Fatalf("register --mount: %s", r)
	}
	if ok, err := binfmt.Mounted(dir); !ok || err != nil {
		t.Errorf("after register --mount, Mounted(%q) = %v, %v", dir, ok, err)
	}
	// The same table as the namespace's other mount.
	if !exists(filepath.Join(ns.BinfmtDir, "m")) {
		t.Errorf("entry m is not in the namespace's table")
	}
	// --mount where it is mounted already changes nothing.
	if r := bctl("register", "--mount", conf); r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Errorf("second register --mount: %s", r)
	}
}

// TestRegisterBareNames checks that bare names go through the binfmt.d
// lookup under --root, masks included.
func TestRegisterBareNames(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/a.conf"), ":a-usr:E::a::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "etc/binfmt.d/a.conf"), ":a-etc:E::a::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/m.conf"), ":masked:E::m::/bin/sh:\n")
	if err := os.Symlink("/dev/null", filepath.Join(root, "etc/binfmt.d/m.conf")); err != nil {
		t.Fatal(err)
	}
	bctl := binfmtctlIn(t, ns.BinfmtDir)
	r := bctl("--root", root, "register", "a.conf", "m.conf")
	want := "a-etc: registered (/etc/binfmt.d/a.conf:1)\n/etc/binfmt.d/m.conf: masked, nothing to register\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("register a.conf m.conf: %s\nwant stdout\n%s", r, want)
	}
	r = bctl("--root", root, "register", "nothere.conf")
	oneLineError(t, r, 1, `"nothere.conf"`)
	if exists(filepath.Join(ns.BinfmtDir, "a-usr")) || exists(filepath.Join(ns.BinfmtDir, "masked")) {
		t.Errorf("an overridden or masked entry was registered")
	}
}
