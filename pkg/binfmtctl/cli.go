package binfmtctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Version is stamped at build time with -ldflags "-X".
var Version = "devel"

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and something failed
	exitUsage = 2 // the command line was wrong
)

// globals are the flags every subcommand accepts.
type globals struct {
	binfmtDir string
	root      string
	stateDir  string
}

func (g *globals) register(fs *flagSet) {
	fs.String(&g.binfmtDir, "binfmt-dir", binfmt.DefaultDir, "binfmt_misc mount point")
	fs.String(&g.root, "root", "/", "root directory for binfmt.d files and the state record; interpreters are checked from / as the kernel opens them")
	fs.String(&g.stateDir, "state-dir", "", "state record directory (default ROOT/var/lib/binfmtctl)")
}

type command struct {
	name    string
	args    string
	summary string
	run     func(c *ctx, args []string) int
	flags   func(fs *flagSet, c *ctx)
}

// ctx carries one invocation's flags and writers.
type ctx struct {
	globals
	stdout, stderr io.Writer
	json           bool
	mount          bool
	apply          bool
}

func (c *ctx) errorf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "binfmtctl: "+format+"\n", args...)
}

// commands is a literal, so that it is laid out at link time instead
// of built at every start-up.
var commands = []command{
	{name: "register", args: "FILE|NAME...", summary: "apply binfmt.d files like systemd-binfmt FILE..., replacing only same-name entries that differ", run: runRegister,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.mount, "mount", "", "mount binfmt_misc first if it is not mounted")
		}},
	{name: "unregister", args: "NAME...", summary: "unregister exactly the named entries", run: runUnregister},
	{name: "enable", args: "NAME...", summary: "enable the named entries", run: runEnable},
	{name: "disable", args: "NAME...", summary: "disable the named entries (they stay registered)", run: runDisable},
	{name: "status", args: "[NAME...]", summary: "show the live entries, their owners and whether their interpreters exist", run: runStatus,
		flags: func(fs *flagSet, c *ctx) { fs.Bool(&c.json, "json", "", "print JSON") }},
	{name: "find", args: "FILE", summary: "show which entry the kernel would use to run FILE", run: runFind,
		flags: func(fs *flagSet, c *ctx) { fs.Bool(&c.json, "json", "", "print JSON") }},
	{name: "cat-config", args: "", summary: "show the effective binfmt.d configuration, with the file each line comes from", run: runCatConfig},
	{name: "hook", args: "post|preun|postun NEVRA COUNT", summary: "run a package scriptlet's hook: NEVRA is the exact package, COUNT is rpm's $1", run: runHook},
	{name: "trigger", args: "leaving|removing|early|guard-before|guard-after PID", summary: "run a step of the rpm file triggers (files on stdin, PID is rpm's)", run: runTrigger},
	{name: "sync", args: "PACKAGE...", summary: "converge a package's entries on its installed binfmt.d files (after a hook could not run)", run: runSync},
	{name: "prune", args: "", summary: "list entries left behind (interpreter gone, stale F pin, nothing defines them); --apply removes them", run: runPrune,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.apply, "apply", "", "unregister what is found")
			fs.Bool(&c.json, "json", "", "print JSON")
		}},
}

// Run runs binfmtctl with args (without the program name) and returns the
// exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	// One write at the end instead of one per line: inside rpm the output
	// goes to a pipe, and every write wakes the reader.
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	c := &ctx{stdout: out, stderr: stderr}
	top := &flagSet{}
	c.globals.register(top)
	var help, version bool
	top.Bool(&help, "help", "h", "show help")
	top.Bool(&version, "version", "", "show the version")
	if err := top.Parse(args); err != nil {
		c.errorf("%v", err)
		usage(stderr)
		return exitUsage
	}
	switch {
	case version:
		fmt.Fprintf(stdout, "binfmtctl %s\n", Version)
		return exitOK
	case help:
		usage(stdout)
		return exitOK
	case len(top.Args()) == 0:
		usage(stderr)
		return exitUsage
	}
	name, rest := top.Args()[0], top.Args()[1:]
	if name == "help" {
		usage(stdout)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name != name {
			continue
		}
		fs := &flagSet{interspersed: true}
		// Global flags are accepted after the subcommand too. Registering
		// them resets the variables to their defaults, so restore what
		// was given before the subcommand.
		given := c.globals
		c.globals.register(fs)
		c.globals = given
		var subHelp bool
		fs.Bool(&subHelp, "help", "h", "show help")
		if cmd.flags != nil {
			cmd.flags(fs, c)
		}
		if err := fs.Parse(rest); err != nil {
			c.errorf("%s: %v", name, err)
			fmt.Fprintf(stderr, "usage: binfmtctl %s %s (see binfmtctl %s --help)\n", name, cmd.args, name)
			return exitUsage
		}
		if subHelp {
			fmt.Fprintf(stdout, "usage: binfmtctl [global flags] %s [flags] %s\n\n%s\n\nflags:\n%s", name, cmd.args, cmd.summary, fs.Usages())
			return exitOK
		}
		return cmd.run(c, fs.Args())
	}
	c.errorf("unknown command %q", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: binfmtctl [--binfmt-dir DIR] [--root DIR] [--state-dir DIR] COMMAND [ARGS]

Manage binfmt_misc entries one at a time, never flushing other tools' entries.

commands:
`)
	names := make([]string, 0, len(commands))
	byName := map[string]command{}
	for _, c := range commands {
		names = append(names, c.name)
		byName[c.name] = c
	}
	sort.Strings(names)
	for _, n := range names {
		c := byName[n]
		fmt.Fprintf(w, "  %-11s %s\n", n, c.summary)
	}
	fmt.Fprintf(w, `
global flags:
      --binfmt-dir DIR   binfmt_misc mount point (default %s)
      --root DIR         root for binfmt.d files and the state record (default /)
      --state-dir DIR    state record directory (default ROOT/var/lib/binfmtctl)
  -h, --help             show help ("binfmtctl COMMAND --help" for a command)
      --version          show the version

exit codes: 0 success, 1 something failed (partial failure included), 2 bad usage
`, binfmt.DefaultDir)
}

// open opens the binfmt_misc mount, printing the error.
func (c *ctx) open() (*binfmt.FS, bool) {
	fs, err := binfmt.Open(c.binfmtDir)
	if err != nil {
		c.errorf("%v", err)
		return nil, false
	}
	return fs, true
}

func (c *ctx) config() binfmt.Config { return binfmt.Config{Root: c.root} }

func runRegister(c *ctx, args []string) int {
	if len(args) == 0 {
		c.errorf("register: no FILE or NAME given (usage: binfmtctl register FILE|NAME...)")
		return exitUsage
	}
	if c.mount {
		if err := binfmt.Mount(c.binfmtDir); err != nil {
			c.errorf("%v", err)
			return exitFail
		}
	}
	fs, err := binfmt.Open(c.binfmtDir)
	if err != nil {
		c.errorf("%v; or pass --mount", err)
		return exitFail
	}
	code := exitOK
	cfg := c.config()
	// All lines go through one Apply, in order, so that the interpreter
	// checks and the live listing are shared by every file. Most
	// binfmt.d files hold one line.
	lines := make([]binfmt.Line, 0, len(args))
	// masked[i] lists the masked files given before line i, to print them
	// in the order the files were given.
	masked := map[int][]string{}
	for _, arg := range args {
		f, err := cfg.Resolve(arg)
		if err != nil {
			c.errorf("%v", err)
			code = exitFail
			continue
		}
		if f.Masked {
			masked[len(lines)] = append(masked[len(lines)], f.Path)
			continue
		}
		l, errs := cfg.Load(f)
		for _, err := range errs {
			c.errorf("%v", err)
			code = exitFail
		}
		lines = append(lines, l...)
	}
	printMasked := func(i int) {
		for _, p := range masked[i] {
			fmt.Fprintf(c.stdout, "%s: masked, nothing to register\n", p)
		}
	}
	for i, r := range fs.Apply(lines, "/") {
		printMasked(i)
		for _, w := range r.Warnings {
			c.errorf("warning: %s", w)
		}
		if r.Err != nil {
			c.errorf("%v", r.Err)
			code = exitFail
			continue
		}
		// Written piece by piece rather than formatted: fmt would copy
		// each Line to the heap to call its String method.
		writeStrings(c.stdout, r.Line.Name, ": ", string(r.Action), " (", r.Line.String(), ")\n")
	}
	printMasked(len(lines))
	return code
}

func runUnregister(c *ctx, args []string) int {
	return eachName(c, "unregister", args, func(fs *binfmt.FS, n string) error { return fs.Unregister(n) }, "unregistered")
}

func runEnable(c *ctx, args []string) int {
	return eachName(c, "enable", args, func(fs *binfmt.FS, n string) error { return fs.Enable(n) }, "enabled")
}

func runDisable(c *ctx, args []string) int {
	return eachName(c, "disable", args, func(fs *binfmt.FS, n string) error { return fs.Disable(n) }, "disabled")
}

func eachName(c *ctx, verb string, args []string, op func(*binfmt.FS, string) error, done string) int {
	if len(args) == 0 {
		c.errorf("%s: no NAME given (usage: binfmtctl %s NAME...)", verb, verb)
		return exitUsage
	}
	fs, ok := c.open()
	if !ok {
		return exitFail
	}
	code := exitOK
	for _, n := range args {
		if err := op(fs, n); err != nil {
			c.errorf("%v", err)
			code = exitFail
			continue
		}
		fmt.Fprintf(c.stdout, "%s: %s\n", n, done)
	}
	return code
}

func runFind(c *ctx, args []string) int {
	if len(args) != 1 {
		c.errorf("find: want exactly one FILE (usage: binfmtctl find FILE)")
		return exitUsage
	}
	fs, ok := c.open()
	if !ok {
		return exitFail
	}
	l, err := fs.Find(args[0])
	if errors.Is(err, binfmt.ErrNotFound) {
		if c.json {
			fmt.Fprintln(c.stdout, renderJSON(findJSON(args[0], nil)))
		} else {
			fmt.Fprintf(c.stdout, "%s: no binfmt_misc entry handles it\n", args[0])
		}
		return exitFail
	}
	if err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	if c.json {
		st := statusOf(c, l)
		fmt.Fprintln(c.stdout, renderJSON(findJSON(args[0], &st)))
		return exitOK
	}
	fmt.Fprintf(c.stdout, "%s: %s (interpreter %s, flags %q)\n", args[0], l.Name, l.Interpreter, l.Flags)
	return exitOK
}

func runCatConfig(c *ctx, args []string) int {
	if len(args) != 0 {
		c.errorf("cat-config: takes no arguments")
		return exitUsage
	}
	cfg := c.config()
	files, err := cfg.Files()
	if err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	code := exitOK
	for _, f := range files {
		if f.Masked {
			fmt.Fprintf(c.stdout, "# %s (masked)\n", f.Path)
		} else {
			fmt.Fprintf(c.stdout, "# %s\n", f.Path)
		}
		for _, s := range f.Shadowed {
			fmt.Fprintf(c.stdout, "# overrides %s\n", s)
		}
		lines, errs := cfg.Load(f)
		for _, err := range errs {
			c.errorf("%v", err)
			code = exitFail
		}
		for _, l := range lines {
			fmt.Fprintf(c.stdout, "%s\n", l.Raw)
		}
		fmt.Fprintln(c.stdout)
	}
	return code
}

func writeStrings(w io.Writer, parts ...string) {
	for _, p := range parts {
		io.WriteString(w, p)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
