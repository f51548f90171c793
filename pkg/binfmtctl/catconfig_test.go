package binfmtctl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// catConfigTrees are the binfmt.d trees cat-config is compared on: the
// register parity corpus, and testdata/binfmt/catconfig, whose files
// have comments, CRLF and lone CR line ends, no last newline, masks by
// an empty file and by /dev/null, overridden files, a hidden file and
// two files defining one name. "" is the machine's own directories.
func catConfigTrees(t *testing.T) map[string]string {
	t.Helper()
	trees := map[string]string{"machine": ""}
	for _, base := range []string{"parity", "catconfig"} {
		dir := filepath.Join("..", "..", "testdata", "binfmt", base)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() {
				abs, err := filepath.Abs(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				trees[base+"/"+e.Name()] = abs
			}
		}
	}
	return trees
}

// TestCatConfigParity runs systemd-binfmt --cat-config and binfmtctl
// cat-config on the same directories, in a private mount namespace
// whose binfmt.d directories hold the tree, and wants the same bytes.
func TestCatConfigParity(t *testing.T) {
	sandbox.Require(t, systemdBinfmt, "systemd")
	for name, tree := range catConfigTrees(t) {
		t.Run(name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			if tree != "" {
				for _, d := range configDirs {
					ns.Tmpfs(d)
					copyTree(t, filepath.Join(tree, d), d)
				}
			}
			cmd := exec.Command(systemdBinfmt, "--cat-config", "--no-pager")
			cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
			want, err := cmd.Output()
			if err != nil {
				t.Fatalf("systemd-binfmt --cat-config: %v", err)
			}
			r := run("cat-config")
			if r.code > 1 {
				t.Fatalf("binfmtctl cat-config: %s", r)
			}
			if r.stdout != string(want) {
				t.Errorf("binfmtctl cat-config differs from systemd-binfmt --cat-config:\n--- systemd-binfmt\n%q\n--- binfmtctl\n%q", want, r.stdout)
			}
		})
	}
}
