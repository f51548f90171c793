package scriptlets

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTriggerBodies: each file trigger body is valid sh, passes the
// transaction's rpm ($PPID) and its step to binfmtctl, and can never fail
// the transaction, binfmtctl present or not.
func TestTriggerBodies(t *testing.T) {
	bodies, _ := filepath.Glob("trigger-*.sh")
	lua, _ := filepath.Glob("trigger-*.lua")
	if len(bodies)+len(lua) != 5 {
		t.Fatalf("trigger bodies %v %v, want the five steps", bodies, lua)
	}
	for _, f := range lua {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		step := strings.TrimSuffix(strings.TrimPrefix(f, "trigger-"), ".lua")
		if !strings.Contains(string(b), `rpm.execute, "/usr/bin/binfmtctl", "trigger", "`+step+`", "-")`) {
			t.Errorf("%s does not run binfmtctl trigger %s - through rpm.execute", f, step)
		}
		if strings.Contains(string(b), "%{") {
			t.Errorf("%s uses a macro", f)
		}
		// rpm's own Lua runs it: without /usr/bin/binfmtctl or
		// /run/systemd/system it does nothing and does not fail.
		body := strings.ReplaceAll(strings.ReplaceAll(string(b), "/usr/bin/binfmtctl", "/nonexistent/binfmtctl"), "%", "%%")
		if out, err := exec.Command("rpm", "--eval", "%{lua:"+body+"}").CombinedOutput(); err != nil || strings.Contains(string(out), "error") {
			t.Errorf("%s does not run in rpm's Lua: %v\n%s", f, err, out)
		}
	}
	for _, f := range bodies {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		step := strings.TrimSuffix(strings.TrimPrefix(f, "trigger-"), ".sh")
		if !strings.Contains(body, `/usr/bin/binfmtctl trigger `+step+` "$PPID" || :`) {
			t.Errorf("%s does not run binfmtctl trigger %s \"$PPID\" || :", f, step)
		}
		if strings.Contains(body, "%{") {
			t.Errorf("%s uses a macro; the bodies are the same in both builds and take none", f)
		}
		if out, err := exec.Command("sh", "-n", "-c", body).CombinedOutput(); err != nil {
			t.Errorf("%s is not valid sh: %v\n%s", f, err, out)
		}
		// Without binfmtctl (it is being erased, or another root), the
		// body succeeds doing nothing.
		if out, err := exec.Command("sh", "-c", strings.ReplaceAll(body, "/usr/bin/binfmtctl", "/nonexistent/binfmtctl")).CombinedOutput(); err != nil {
			t.Errorf("%s fails without binfmtctl: %v\n%s", f, err, out)
		}
	}
}
