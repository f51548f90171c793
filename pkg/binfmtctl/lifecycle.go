package binfmtctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

func (c *ctx) manager() *lifecycle.Manager {
	// With --state-dir the lock is next to it (STATE.lock), so a test
	// never locks the host's /run.
	state, lock := c.stateDir, ""
	if state == "" {
		state = filepath.Join(c.root, lifecycle.DefaultStateDir)
		lock = filepath.Join(c.root, lifecycle.DefaultLockFile)
	}
	// The lock is a root-only file in /run (issue 16, point 3); tests
	// shorten its bounded wait with BINFMTCTL_LOCK_TIMEOUT.
	timeout, _ := time.ParseDuration(os.Getenv("BINFMTCTL_LOCK_TIMEOUT"))
	return &lifecycle.Manager{
		BinfmtDir: c.binfmtDir,
		Config:    c.config(),
		Store:     lifecycle.Store{Dir: state, LockFile: lock, LockTimeout: timeout},
		RPM:       lifecycle.RPM{Root: c.root},
		Notices:   c.stderr,
	}
}

func runHook(c *ctx, args []string) int {
	if len(args) != 3 {
		c.errorf("hook: want PHASE NEVRA COUNT (usage: binfmtctl hook post|preun|postun NEVRA COUNT)")
		return exitUsage
	}
	count, err := lifecycle.ParseCount(args[2])
	if err != nil {
		c.errorf("hook: %v", err)
		return exitUsage
	}
	if err := c.manager().Hook(lifecycle.Phase(args[0]), args[1], count); err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	return exitOK
}

func runSync(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("sync: no PACKAGE given (usage: binfmtctl sync PACKAGE...)")
		return exitUsage
	}
	code := exitOK
	m := c.manager()
	for _, p := range args {
		if err := m.Sync(p); err != nil {
			c.errorf("%v", err)
			code = exitFail
		}
	}
	return code
}

func runStatus(c *ctx, args []string) int {
	r, err := c.manager().Status(args...)
	if err != nil {
		c.errorf("%v", err)
	}
	if c.json && (err == nil || errors.Is(err, binfmt.ErrNotMounted)) {
		// Scripts get the report even when binfmt_misc is missing:
		// "mounted": false says why it is empty.
		fmt.Fprintln(c.stdout, renderJSON(reportJSON(r)))
	}
	if err != nil {
		return exitFail
	}
	if c.json {
		return exitOK
	}
	if !r.Enabled {
		fmt.Fprintf(c.stdout, "binfmt_misc at %s is disabled: no entry is used\n", r.BinfmtDir)
	}
	if len(r.Entries) == 0 {
		fmt.Fprintf(c.stdout, "no entries registered in %s\n", r.BinfmtDir)
		return exitOK
	}
	rows := [][]string{{"NAME", "ENABLED", "INTERPRETER", "EXISTS", "FLAGS", "MATCH", "OWNER"}}
	for _, e := range r.Entries {
		exists := yesNo(e.InterpreterExists)
		if e.StalePin {
			exists = "replaced"
		}
		owner := orDash(e.Owner)
		if e.Owner == "" && e.ReplacedFrom != "" {
			owner = "- (replaced; was " + e.ReplacedFrom + ")"
		}
		rows = append(rows, []string{e.Name, yesNo(e.Enabled), e.Interpreter, exists, orDash(e.Flags), match(e), owner})
	}
	writeColumns(c.stdout, rows)
	return exitOK
}

func match(e lifecycle.EntryStatus) string {
	if e.Type == "extension" {
		return "extension ." + e.Extension
	}
	m := "magic " + abbreviate(e.Magic, 16)
	if e.Offset != 0 {
		m = fmt.Sprintf("magic @%d %s", e.Offset, abbreviate(e.Magic, 16))
	}
	return m
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func runPrune(c *ctx, args []string) int {
	if len(args) != 0 {
		c.errorf("prune: takes no arguments")
		return exitUsage
	}
	findings, err := c.manager().Prune(c.apply)
	if c.json {
		fmt.Fprintln(c.stdout, renderJSON(findingsJSON(findings)))
	} else {
		for _, f := range findings {
			state := "would remove"
			switch {
			case f.Removed:
				state = "removed"
			case f.Error != "":
				state = "failed: " + f.Error
			}
			fmt.Fprintf(c.stdout, "%s: %s (%s)\n", f.Entry.Name, state, strings.Join(f.Reasons, "; "))
		}
		if len(findings) == 0 {
			fmt.Fprintln(c.stdout, "nothing to prune")
		} else if !c.apply {
			fmt.Fprintln(c.stdout, "run again with --apply to unregister these")
		}
	}
	if err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	return exitOK
}

func statusOf(c *ctx, l binfmt.Live) lifecycle.EntryStatus {
	r, err := c.manager().Status(l.Name)
	if err != nil || len(r.Entries) == 0 {
		return lifecycle.EntryStatus{Name: l.Name, Interpreter: l.Interpreter, Flags: l.Flags, Enabled: l.Enabled}
	}
	return r.Entries[0]
}

// writeColumns prints rows as left-aligned columns two spaces apart.
// (text/tabwriter would do it too, at a cost in the helper's size.)
func writeColumns(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}
