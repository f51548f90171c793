package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestNewPackagesFileTriggerUnOnErase: does the %filetriggerun of a
// package that the transaction installs run for the binfmt.d files of a
// package the same transaction erases (after the install, as dnf orders
// a swap)? The helper's cleanup of Fedora's package in the swap that
// installs the helper depends on it. Logged, per stack: rpm 4.18 runs it;
// the test records what each rpm does and fails if the log shows neither.
func TestNewPackagesFileTriggerUnOnErase(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			w := orderWatcher()
			w.Obsoletes = []string{"order-payload"}
			watcher, payload := sandbox.BuildRPM(t, w), sandbox.BuildRPM(t, orderPayload("1"))
			r := ns.DNFRootOn(st)
			if out, err := r.DNF("install", payload); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			os.Remove(r.Path(orderLog))
			out, err := r.DNF("install", watcher)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if q, _ := r.RPM("-q", "order-payload"); !strings.Contains(q, "not installed") {
				t.Fatalf("the watcher did not replace the payload: %s\n%s", q, out)
			}
			data, _ := os.ReadFile(r.Path(orderLog))
			log := orderRun(strings.Split(strings.TrimSpace(string(data)), "\n"))
			ran := log.index("filetriggerun") >= 0
			t.Logf("%s: the new package's %%filetriggerun ran for the erased package's files: %v; the log:\n%s", st.Name, ran, data)
			want := st.Name == "host"
			if ran != want {
				t.Errorf("%s: the new package's %%filetriggerun ran: %v, want %v", st.Name, ran, want)
			}
		})
	}
}
