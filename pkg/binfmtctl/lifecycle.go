package binfmtctl

import (
	"encoding/hex"
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
	switch lifecycle.Phase(args[0]) {
	case lifecycle.Post, lifecycle.Preun, lifecycle.Postun:
	case lifecycle.PhaseAfterErase:
		// Hidden: the detached copy GuardErase starts.
		return runAfterErase(c)
	default:
		c.errorf("hook: unknown phase %q: want post, preun or postun (usage: binfmtctl hook post|preun|postun NEVRA COUNT)", args[0])
		return exitUsage
	}
	count, err := lifecycle.ParseCount(args[2])
	if err != nil {
		c.errorf("hook: %v", err)
		return exitUsage
	}
	m := c.manager()
	if err := m.Hook(lifecycle.Phase(args[0]), args[1], count); err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	if c.shipsHelper && lifecycle.Phase(args[0]) == lifecycle.Preun && count == 0 {
		// The erase of a package that ships the helper: guard the
		// end of the transaction, where nothing of binfmtctl may be
		// left to run (docs/lifecycle.md, "The erase guard").
		m.GuardErase(args[1], "/proc/self/exe", []string{"--binfmt-dir", c.binfmtDir, "--root", c.root, "--state-dir", c.stateDir})
	}
	return exitOK
}

// runAfterErase is the detached copy of the erase guard: the snapshot on
// standard input, the guard's log as standard error, rpm's lock file as
// fd 3.
func runAfterErase(c *ctx) int {
	m := c.manager()
	timeout, _ := time.ParseDuration(os.Getenv("BINFMTCTL_GUARD_TIMEOUT"))
	if err := m.AfterErase(os.Stdin, os.NewFile(3, "rpm lock"), timeout); err != nil {
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
		// A package that is not installed and has no record is an error:
		// a typo must not pass for a package with nothing to converge.
		// One with a record is the cleanup after an erase whose hooks did
		// not run: its recorded entries are unregistered.
		ms, qerr := m.RPM.Installed(p)
		notInstalled := (qerr == nil && len(ms) == 0) || errors.Is(qerr, lifecycle.ErrNotInstalled)
		var claims lifecycle.Claims
		if notInstalled {
			claims, _ = m.Store.Claims(p)
		}
		if notInstalled && len(claims) == 0 {
			// Said before converging, which would have nothing to do
			// but talk about the table (binfmt_misc not mounted, say).
			c.errorf("sync %s: package %q is not installed, and binfmtctl has no record of it", p, p)
			code = exitFail
			continue
		}
		// A person runs sync to mend what a hook could not do; without
		// the table it mends nothing, which is a failure here, not the
		// notice a hook gives to let the transaction go on.
		fs, err := binfmt.Open(c.binfmtDir)
		if err != nil {
			c.errorf("sync %s: %v", p, err)
			code = exitFail
			continue
		}
		// The claimed entries that are live now, to name those the
		// cleanup unregisters: not one someone else has replaced since,
		// which it leaves alone, nor one that was gone already.
		var live []string
		for _, name := range claims.Names() {
			if _, err := fs.Entry(name); err == nil {
				live = append(live, name)
			}
		}
		if err := m.Sync(p); err != nil {
			c.errorf("%v", err)
			code = exitFail
			continue
		}
		if notInstalled {
			var removed []string
			for _, name := range live {
				if _, err := fs.Entry(name); errors.Is(err, binfmt.ErrNotFound) {
					removed = append(removed, name)
				}
			}
			if len(removed) == 0 {
				fmt.Fprintf(c.stdout, "%s: not installed; nothing its record claimed was left to unregister\n", p)
			} else {
				fmt.Fprintf(c.stdout, "%s: not installed; unregistered the entries its record claimed: %s\n", p, strings.Join(removed, ", "))
			}
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
	rows := [][]string{{"NAME", "ENABLED", "INTERPRETER", "EXISTS", "FLAGS", "MATCH", "OWNER", "SOURCE"}}
	for _, e := range r.Entries {
		var exists string
		switch st := e.InterpreterState(); st {
		case "present":
			exists = "yes"
		case "missing":
			exists = "no"
		default:
			exists = st
		}
		owner := orDash(e.Owner)
		if e.Owner == "" && e.ReplacedFrom != "" {
			owner = "- (replaced; was " + e.ReplacedFrom + ")"
		}
		rows = append(rows, []string{e.Name, yesNo(e.Enabled), e.Interpreter, exists, orDash(e.Flags), match(e), owner, source(e)})
	}
	writeColumns(c.stdout, rows)
	return exitOK
}

// source says which binfmt.d file defines the live entry exactly, and
// names the others that define an entry of that name.
func source(e lifecycle.EntryStatus) string {
	var others []string
	for _, d := range e.DefinedIn {
		if d != e.Source {
			others = append(others, d)
		}
	}
	switch {
	case e.Source == "" && len(others) > 0:
		return "- (defined differently in " + strings.Join(others, ", ") + ")"
	case e.Source == "":
		return "-"
	case len(others) > 0:
		return e.Source + " (also defined in " + strings.Join(others, ", ") + ")"
	}
	return e.Source
}

// match shows what tells entries apart: an ELF magic by its class, byte
// order and machine, other magics by their first bytes in hex.
func match(e lifecycle.EntryStatus) string {
	if e.Type == "extension" {
		return "extension ." + e.Extension
	}
	magic, err1 := hex.DecodeString(e.Magic)
	mask, err2 := hex.DecodeString(e.Mask)
	if err1 == nil && err2 == nil {
		if len(mask) == 0 {
			mask = nil
		}
		if d, ok := binfmt.DescribeELF(e.Offset, magic, mask); ok {
			return d
		}
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
	findings, err := c.manager().PruneWith(lifecycle.PruneOptions{Apply: c.apply, Names: args, Pinned: c.pinned})
	if c.json {
		fmt.Fprintln(c.stdout, renderJSON(findingsJSON(findings)))
	} else {
		wouldRemove := 0
		for _, f := range findings {
			var state string
			switch {
			case f.Error != "":
				state = "failed: " + f.Error
			case f.Removed:
				state = "removed"
			case f.WouldRemove():
				state = "would remove"
				wouldRemove++
			case f.Action == lifecycle.PruneIfNamed:
				state = "kept unless named"
			default:
				state = "keep"
			}
			fmt.Fprintf(c.stdout, "%s: %s (%s)\n", f.Entry.Name, state, strings.Join(f.Reasons, "; "))
		}
		switch {
		case err != nil && len(findings) == 0:
		case len(findings) == 0:
			fmt.Fprintln(c.stdout, "no entries registered")
		case wouldRemove == 0 && !c.apply:
			fmt.Fprintln(c.stdout, "nothing to prune")
		case wouldRemove > 0:
			fmt.Fprintln(c.stdout, "run again with --apply to unregister those entries")
		}
	}
	if err != nil {
		// One line: each entry's failure is in its own line above.
		msg := err.Error()
		if first, _, more := strings.Cut(msg, "\n"); more {
			msg = fmt.Sprintf("%s (and %d more entries that could not be removed)", first, strings.Count(msg, "\n"))
		}
		c.errorf("%s", msg)
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
