package sandbox

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require fails the test unless the program or file at path exists. A path
// without a slash is looked up in PATH. The message names the Debian
// package to install, because a missing tool is a problem of the machine
// to fix, not a reason to skip silently:
//
//	sandbox.Require(t, "/usr/bin/qemu-aarch64-static", "qemu-user-static")
//	sandbox.Require(t, "createrepo_c", "createrepo-c")
func Require(t testing.TB, path, install string) {
	t.Helper()
	var err error
	if strings.Contains(path, "/") {
		_, err = os.Stat(path)
	} else {
		_, err = exec.LookPath(path)
	}
	if err != nil {
		t.Fatalf("missing %s: install with `apt-get install -y %s` (%v)", path, install, err)
	}
}
