package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// orderLog is where every scriptlet and trigger of the order test writes
// one line, inside the root.
const orderLog = "/var/log/trigger-order"

// logLine is a shell body that appends "tag" to the log, and for a file
// trigger each file it got on standard input with whether it exists now.
func logLine(tag string, stdin bool) string {
	body := fmt.Sprintf("echo %q >>%s\n", tag, orderLog)
	if stdin {
		body += fmt.Sprintf(`while read -r f; do
	if [ -e "$f" ]; then e=exists; else e=gone; fi
	echo "  %s $f $e" >>%s
done
`, tag, orderLog)
	}
	return body
}

// orderWatcher carries one trigger of every kind on the binfmt.d
// directories, and three transaction triggers of different priorities
// around systemd's 1000700, the middle one in Lua as systemd's is.
func orderWatcher() sandbox.PackageSpec {
	dirs := []string{"/usr/lib/binfmt.d", "/etc/binfmt.d"}
	tr := func(kind string, prio int, stdin bool) sandbox.Trigger {
		tag := kind
		if prio != 0 {
			tag = fmt.Sprintf("%s:%d", kind, prio)
		}
		return sandbox.Trigger{Kind: kind, Priority: prio, Paths: dirs, Body: logLine(tag, stdin)}
	}
	return sandbox.PackageSpec{
		Name: "order-watcher", Version: "1",
		Triggers: []sandbox.Trigger{
			tr("transfiletriggerin", 1000701, true),
			{Kind: "transfiletriggerin", Priority: 1000700, Interpreter: "<lua>", Paths: dirs,
				Body: fmt.Sprintf("local f = io.open(%q, \"a\")\nf:write(\"transfiletriggerin:1000700:lua\\n\")\nf:close()\n", orderLog)},
			tr("transfiletriggerin", 1000699, true),
			tr("filetriggerin", 0, true),
			tr("filetriggerun", 0, true),
			tr("filetriggerpostun", 0, true),
			tr("transfiletriggerun", 1000701, true),
			tr("transfiletriggerun", 1000699, true),
			tr("transfiletriggerpostun", 1000701, false),
			tr("transfiletriggerpostun", 1000699, false),
		},
	}
}

// orderPayload ships binfmt.d files (a.conf always, b.conf only in
// version 1) and logs every scriptlet with its version and $1.
func orderPayload(version string) sandbox.PackageSpec {
	files := []sandbox.File{{Dst: "/usr/lib/binfmt.d/order-a.conf", Content: []byte("# a " + version + "\n")}}
	if version == "1" {
		files = append(files, sandbox.File{Dst: "/usr/lib/binfmt.d/order-b.conf", Content: []byte("# b\n")})
	}
	s := func(phase string) string {
		return fmt.Sprintf("echo \"payload-%s:%s:$1\" >>%s\n", version, phase, orderLog)
	}
	return sandbox.PackageSpec{
		Name: "order-payload", Version: version, Files: files,
		Pre: s("pre"), Post: s("post"), PreUn: s("preun"), PostUn: s("postun"),
		PreTrans: s("pretrans"), PostTrans: s("posttrans"),
	}
}

// orderRun is what one transaction logged.
type orderRun []string

// index is the position of the first line equal to tag, or -1.
func (r orderRun) index(tag string) int {
	for i, l := range r {
		if l == tag {
			return i
		}
	}
	return -1
}

// files returns the files the trigger logged as tag got, "path state".
func (r orderRun) files(tag string) []string {
	var out []string
	for _, l := range r {
		if rest, ok := strings.CutPrefix(l, "  "+tag+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// before fails unless each tag is logged, in this order.
func (r orderRun) before(t *testing.T, what string, tags ...string) {
	t.Helper()
	last := -1
	for _, tag := range tags {
		i := r.index(tag)
		if i < 0 {
			t.Errorf("%s: %s did not run; the log:\n%s", what, tag, strings.Join(r, "\n"))
			return
		}
		if i < last {
			t.Errorf("%s: %s ran before %s; the log:\n%s", what, tag, tags[0], strings.Join(r, "\n"))
			return
		}
		last = i
	}
}

func (r orderRun) got(t *testing.T, what, tag string, want ...string) {
	t.Helper()
	if got := r.files(tag); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: %s got files %q, want %q; the log:\n%s", what, tag, got, want, strings.Join(r, "\n"))
	}
}

// triggerOrder verifies the order in which this rpm runs scriptlets and
// file triggers, which the helper's guard around systemd's binfmt trigger
// and its cleanup rely on (docs/lifecycle.md, "Order of scriptlets and
// triggers"). Each transaction's log is checked for the facts the design
// needs, not for rpm's whole sequence.
func triggerOrder(t *testing.T, tx func(r *sandbox.Root, args ...string) (string, error), install, upgrade, erase []string) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { triggerOrderOn(t, st, tx, install, upgrade, erase) })
	}
}

func triggerOrderOn(t *testing.T, st sandbox.Stack, tx func(r *sandbox.Root, args ...string) (string, error), install, upgrade, erase []string) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	r := ns.DNFRootOn(st)
	watcher := sandbox.BuildRPM(t, orderWatcher())
	v1 := sandbox.BuildRPM(t, orderPayload("1"))
	v2 := sandbox.BuildRPM(t, orderPayload("2"))
	if out, err := r.DNF("install", watcher); err != nil {
		t.Fatalf("installing the watcher: %v\n%s", err, out)
	}
	run := func(args ...string) orderRun {
		t.Helper()
		os.Remove(r.Path(orderLog))
		if out, err := tx(r, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, err := os.ReadFile(r.Path(orderLog))
		if err != nil {
			t.Fatalf("reading the log of the transaction: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		t.Logf("%s:\n%s", strings.Join(args, " "), strings.Join(lines, "\n"))
		return lines
	}
	a, b := "/usr/lib/binfmt.d/order-a.conf", "/usr/lib/binfmt.d/order-b.conf"

	in := run(append(install, v1)...)
	// %filetriggerin runs before the package's own %post.
	in.before(t, "install", "payload-1:pretrans:1", "payload-1:pre:1", "filetriggerin", "payload-1:post:1", "payload-1:posttrans:1",
		"transfiletriggerin:1000701", "transfiletriggerin:1000700:lua", "transfiletriggerin:1000699")
	in.got(t, "install", "filetriggerin", a+" exists", b+" exists")
	in.got(t, "install", "transfiletriggerin:1000701", a+" exists", b+" exists")
	for _, tag := range []string{"transfiletriggerun:1000701", "filetriggerun", "filetriggerpostun", "transfiletriggerpostun:1000701"} {
		if in.index(tag) >= 0 {
			t.Errorf("install: %s ran", tag)
		}
	}

	up := run(append(upgrade, v2)...)
	// %transfiletriggerun gets every file of the old version, a.conf too
	// although v2 replaces it, after %pretrans and while they all exist.
	// %filetriggerun and %filetriggerpostun get only the files that go.
	up.before(t, "upgrade", "payload-2:pretrans:2", "transfiletriggerun:1000701", "transfiletriggerun:1000699", "payload-2:pre:2",
		"filetriggerin", "payload-2:post:2", "filetriggerun", "payload-1:preun:1", "filetriggerpostun", "payload-1:postun:1",
		"payload-2:posttrans:2", "transfiletriggerin:1000701", "transfiletriggerin:1000700:lua", "transfiletriggerin:1000699")
	up.got(t, "upgrade", "transfiletriggerun:1000701", a+" exists", b+" exists")
	up.got(t, "upgrade", "filetriggerin", a+" exists")
	up.got(t, "upgrade", "filetriggerun", b+" exists")
	up.got(t, "upgrade", "filetriggerpostun", b+" gone")
	up.got(t, "upgrade", "transfiletriggerin:1000701", a+" exists")
	postunLast(t, "upgrade", up)

	er := run(erase...)
	er.before(t, "erase", "transfiletriggerun:1000701", "transfiletriggerun:1000699", "filetriggerun", "payload-2:preun:0",
		"filetriggerpostun", "payload-2:postun:0")
	er.got(t, "erase", "transfiletriggerun:1000701", a+" exists")
	er.got(t, "erase", "filetriggerun", a+" exists")
	er.got(t, "erase", "filetriggerpostun", a+" gone")
	if er.index("transfiletriggerin:1000701") >= 0 {
		t.Errorf("erase: transfiletriggerin ran")
	}
	postunLast(t, "erase", er)
}

// postunLast checks %transfiletriggerpostun, which rpm 4.18 does not run
// at all here (docs/lifecycle.md): the design does not rely on it, and
// where an rpm runs it, it must come after everything else.
func postunLast(t *testing.T, what string, r orderRun) {
	t.Helper()
	i, j := r.index("transfiletriggerpostun:1000701"), r.index("transfiletriggerpostun:1000699")
	if i < 0 && j < 0 {
		t.Logf("%s: %%transfiletriggerpostun did not run", what)
		return
	}
	if i < 0 || j < 0 || j < i || i < len(r)-2 {
		t.Errorf("%s: %%transfiletriggerpostun ran out of order or only once; the log:\n%s", what, strings.Join(r, "\n"))
	}
}

func dnfTx(r *sandbox.Root, args ...string) (string, error) { return r.DNF(args...) }
func rpmTx(r *sandbox.Root, args ...string) (string, error) { return r.RPM(args...) }

// TestTriggerOrderDNF verifies rpm's order of scriptlets and file
// triggers through dnf.
func TestTriggerOrderDNF(t *testing.T) {
	triggerOrder(t, dnfTx, []string{"install"}, []string{"upgrade"}, []string{"remove", "order-payload"})
}

// TestTriggerOrderRPM does the same through the rpm CLI.
func TestTriggerOrderRPM(t *testing.T) {
	triggerOrder(t, rpmTx, []string{"-i"}, []string{"-U"}, []string{"-e", "order-payload"})
}

// selfTriggers verifies what rpm does with the file triggers of a package
// that is installed (or erased) in the same transaction as the files that
// match them, its own files included: the case of our package's first
// install and of its erase.
func selfTriggers(t *testing.T, st sandbox.Stack, tx func(r *sandbox.Root, args ...string) (string, error), install, erase []string) (in, er orderRun) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return nil, nil
	}
	r := ns.DNFRootOn(st)
	// Installed before: a transaction trigger at systemd's priority, in
	// another package.
	other := sandbox.BuildRPM(t, sandbox.PackageSpec{Name: "order-other", Version: "1", Triggers: []sandbox.Trigger{{
		Kind: "transfiletriggerin", Priority: 1000700, Paths: []string{"/usr/lib/binfmt.d"}, Body: logLine("other:1000700", false),
	}}})
	if out, err := r.DNF("install", other); err != nil {
		t.Fatalf("installing the other watcher: %v\n%s", err, out)
	}
	w := orderWatcher()
	w.Files = orderPayload("1").Files
	w.Post = fmt.Sprintf("echo self:post >>%s\n", orderLog)
	w.PostTrans = fmt.Sprintf("echo self:posttrans >>%s\n", orderLog)
	w.PreUn = fmt.Sprintf("echo self:preun >>%s\n", orderLog)
	w.PostUn = fmt.Sprintf("echo self:postun >>%s\n", orderLog)
	pkg := sandbox.BuildRPM(t, w)
	run := func(args ...string) orderRun {
		t.Helper()
		os.Remove(r.Path(orderLog))
		if out, err := tx(r, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, _ := os.ReadFile(r.Path(orderLog))
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		t.Logf("%s:\n%s", strings.Join(args, " "), strings.Join(lines, "\n"))
		return lines
	}
	return run(append(install, pkg)...), run(erase...)
}

func checkSelf(t *testing.T, in, er orderRun) {
	t.Helper()
	if in == nil {
		return
	}
	// Installed in the same transaction, its triggers run for its own
	// files: %filetriggerin before its %post, the transaction triggers
	// after its %posttrans, in priority order.
	in.before(t, "self install", "filetriggerin", "self:post", "self:posttrans", "transfiletriggerin:1000701", "transfiletriggerin:1000700:lua", "transfiletriggerin:1000699")
	in.got(t, "self install", "transfiletriggerin:1000701", "/usr/lib/binfmt.d/order-a.conf exists", "/usr/lib/binfmt.d/order-b.conf exists")
	// The transaction triggers of the package the transaction installs
	// run after those of packages installed before, whatever the
	// priorities: another package's 1000700 runs before its 1000701.
	in.before(t, "self install", "self:posttrans", "other:1000700", "transfiletriggerin:1000701")
	// Erased, its %transfiletriggerun and %filetriggerun run for its own
	// files while they exist (both rpm 4.18 and 6.1 run its %filetriggerun
	// twice). Its own %filetriggerpostun runs on rpm 4.18, before its
	// %postun, and not on rpm 6.1: the design uses neither.
	er.before(t, "self erase", "transfiletriggerun:1000701", "filetriggerun", "self:preun", "self:postun")
	if i := er.index("filetriggerpostun"); i >= 0 && i > er.index("self:postun") {
		t.Errorf("self erase: %%filetriggerpostun ran after the package's %%postun")
	}
}

func TestSelfTriggersDNF(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			in, er := selfTriggers(t, st, dnfTx, []string{"install"}, []string{"remove", "order-watcher"})
			checkSelf(t, in, er)
		})
	}
}

func TestSelfTriggersRPM(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			in, er := selfTriggers(t, st, rpmTx, []string{"-i"}, []string{"-e", "order-watcher"})
			checkSelf(t, in, er)
		})
	}
}
