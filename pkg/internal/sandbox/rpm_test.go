package sandbox

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func rpmQuery(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	cmd := exec.Command("rpm", append([]string{"-qp"}, append(args, pkg)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm -qp %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

func TestBuildRPM(t *testing.T) {
	Require(t, "rpm", "rpm")
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pkg := BuildRPM(t, PackageSpec{
		Name:    "sandbox-demo",
		Version: "2.5",
		Release: "3",
		Files: []File{
			{Dst: "/usr/bin/sandbox-demo", Src: src, Mode: 0o755},
			{Dst: "/etc/sandbox-demo.conf", Content: []byte("x=1\n"), Type: "config|noreplace"},
			{Dst: "/usr/lib/sandbox-demo", Type: "dir"},
			{Dst: "/usr/bin/sandbox-demo-link", Src: "sandbox-demo", Type: "symlink"},
		},
		Post:      "echo post\n",
		PostUn:    "echo postun\n",
		PreTrans:  "echo pretrans\n",
		PostTrans: "echo posttrans\n",
		Provides:  []string{"sandbox-demo-api = 2"},
		Requires:  []string{"sandbox-base >= 1.0"},
		Conflicts: []string{"sandbox-old"},
	})
	if got, want := filepath.Base(pkg), "sandbox-demo-2.5-3.noarch.rpm"; got != want {
		t.Errorf("file name %q, want %q", got, want)
	}
	if got, want := rpmQuery(t, pkg, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n"), "sandbox-demo 2.5 3 noarch\n"; got != want {
		t.Errorf("header: %q, want %q", got, want)
	}
	files := rpmQuery(t, pkg, "--qf", "[%{FILEMODES:perms} %{FILENAMES} %{FILELINKTOS}\n]")
	for _, want := range []string{
		"-rwxr-xr-x /usr/bin/sandbox-demo \n",
		"-rw-r--r-- /etc/sandbox-demo.conf \n",
		"drwxr-xr-x /usr/lib/sandbox-demo \n",
		"/usr/bin/sandbox-demo-link sandbox-demo\n",
	} {
		if !strings.Contains(files, want) {
			t.Errorf("file list lacks %q:\n%s", want, files)
		}
	}
	if got := rpmQuery(t, pkg, "--configfiles"); got != "/etc/sandbox-demo.conf\n" {
		t.Errorf("config files: %q", got)
	}
	scripts := rpmQuery(t, pkg, "--scripts")
	for _, want := range []string{"echo post\n", "echo postun\n", "echo pretrans\n", "echo posttrans\n"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("scriptlets lack %q:\n%s", want, scripts)
		}
	}
	if got := rpmQuery(t, pkg, "--provides"); !strings.Contains(got, "sandbox-demo-api = 2\n") {
		t.Errorf("provides: %q", got)
	}
	if got := rpmQuery(t, pkg, "--requires"); !strings.Contains(got, "sandbox-base >= 1.0\n") {
		t.Errorf("requires: %q", got)
	}
	if got := rpmQuery(t, pkg, "--conflicts"); got != "sandbox-old\n" {
		t.Errorf("conflicts: %q", got)
	}

	// The same spec gives the same bytes.
	again := BuildRPM(t, PackageSpec{Name: "sandbox-demo", Version: "2.5", Release: "3", Files: []File{{Dst: "/a", Content: []byte("a")}}})
	again2 := BuildRPM(t, PackageSpec{Name: "sandbox-demo", Version: "2.5", Release: "3", Files: []File{{Dst: "/a", Content: []byte("a")}}})
	b1, _ := os.ReadFile(again)
	b2, _ := os.ReadFile(again2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("two builds of one spec differ")
	}
}

func TestShellProvider(t *testing.T) {
	Require(t, "rpm", "rpm")
	pkg := BuildRPM(t, ShellProvider())
	if got := rpmQuery(t, pkg, "--provides"); !strings.Contains(got, "/bin/sh\n") {
		t.Errorf("provides: %q", got)
	}
	if got := rpmQuery(t, pkg, "--list"); !strings.Contains(got, "(contains no files)") {
		t.Errorf("files: %q", got)
	}
}
