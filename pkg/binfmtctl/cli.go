package binfmtctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/clidoc"
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
	fs.String(&g.binfmtDir, "binfmt-dir", "DIR", binfmt.DefaultDir, "binfmt_misc mount point")
	fs.String(&g.root, "root", "DIR", "/", "root directory for binfmt.d files and the state record; interpreters are checked from / as the kernel opens them")
	fs.String(&g.stateDir, "state-dir", "DIR", "", "state record directory (default ROOT/var/lib/binfmtctl)")
}

// topFlags defines the flags of the top level: the globals, --help and
// --version.
func topFlags(fs *flagSet, g *globals, help, version *bool) {
	g.register(fs)
	fs.Bool(help, "help", "h", "show help (\"binfmtctl help COMMAND\" for a command)")
	fs.Bool(version, "version", "", "show the version")
}

// command is one row of the table that the parser, the help, the manual
// page and the shell completions are all made from.
type command struct {
	name    string
	args    string
	summary string
	// run is nil for the commands that read the table itself (help,
	// manual, completion): Run dispatches those, because a function in
	// the table that refers to the table is an initialisation cycle.
	run   func(c *ctx, args []string) int
	flags func(fs *flagSet, c *ctx)
	// complete says what the arguments complete to.
	complete clidoc.Completion
}

// ctx carries one invocation's flags and writers.
type ctx struct {
	globals
	stdout, stderr io.Writer
	json           bool
	mount          bool
	apply          bool
	force          bool
	pinned         bool
	annotate       bool
	shipsHelper    bool
}

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (c *ctx) errorf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "binfmtctl: "+format+"\n", args...)
}

// liveEntries lists the entries of the usual binfmt_misc mount, for the
// shell completions of commands that take entry names.
const liveEntries = "ls /proc/sys/fs/binfmt_misc | grep -vx -e register -e status"

// commands is a literal, so that it is laid out at link time instead
// of built at every start-up.
var commands = []command{
	{name: "register", args: "FILE|NAME...", summary: "apply binfmt.d files like systemd-binfmt FILE..., replacing only same-name entries that differ; NAME is a binfmt.d file name, with or without .conf", run: runRegister,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.mount, "mount", "", "mount binfmt_misc first if it is not mounted")
			fs.Bool(&c.force, "force", "", "register an entry even if it would run the host's own programs")
		},
		complete: clidoc.Completion{Files: true}},
	{name: "unregister", args: "NAME...", summary: "unregister exactly the named entries", run: runUnregister,
		complete: clidoc.Completion{Dynamic: liveEntries}},
	{name: "enable", args: "NAME...", summary: "enable the named entries", run: runEnable,
		complete: clidoc.Completion{Dynamic: liveEntries}},
	{name: "disable", args: "NAME...", summary: "disable the named entries (they stay registered)", run: runDisable,
		complete: clidoc.Completion{Dynamic: liveEntries}},
	{name: "status", args: "[NAME...]", summary: "show the live entries, their owners and whether their interpreters exist", run: runStatus,
		flags:    func(fs *flagSet, c *ctx) { fs.Bool(&c.json, "json", "", "print JSON") },
		complete: clidoc.Completion{Dynamic: liveEntries}},
	{name: "find", args: "FILE", summary: "show which entry the kernel would use to run FILE", run: runFind,
		flags:    func(fs *flagSet, c *ctx) { fs.Bool(&c.json, "json", "", "print JSON") },
		complete: clidoc.Completion{Files: true, FirstOnly: true}},
	{name: "cat-config", args: "", summary: "show the effective binfmt.d configuration as systemd-binfmt --cat-config does", run: runCatConfig,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.annotate, "annotate", "", "add comments on masked and overridden files and on names several files define")
		}},
	{name: "hook", args: "post|preun|postun NEVRA COUNT", summary: "run a package scriptlet's hook: NEVRA is the exact package, COUNT is rpm's $1", run: runHook,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.shipsHelper, "ships-helper", "", "the package ships /usr/bin/binfmtctl: on erase, put back after the transaction what systemd-binfmt flushes when no helper is left")
		},
		complete: clidoc.Completion{Words: []string{"post", "preun", "postun"}, FirstOnly: true}},
	{name: "trigger", args: "leaving|removing|early|guard-before|guard-after PID [FILE...]", summary: "run a step of the rpm file triggers (PID is rpm's; files as arguments, else on stdin)", run: runTrigger,
		complete: clidoc.Completion{Words: []string{"leaving", "removing", "early", "guard-before", "guard-after"}, FirstOnly: true}},
	{name: "sync", args: "PACKAGE...", summary: "converge a package's entries on its installed binfmt.d files (after a hook could not run)", run: runSync},
	{name: "prune", args: "[NAME...]", summary: "list entries that are broken or left behind and what --apply would do; --apply removes them", run: runPrune,
		flags: func(fs *flagSet, c *ctx) {
			fs.Bool(&c.apply, "apply", "", "unregister what is found")
			fs.Bool(&c.pinned, "pinned", "", "also remove entries pinned with F to a file that no longer exists (docker's entries are such)")
			fs.Bool(&c.json, "json", "", "print JSON")
		},
		complete: clidoc.Completion{Dynamic: liveEntries}},
	{name: "help", args: "[COMMAND]", summary: "show the help of binfmtctl or of a command",
		complete: clidoc.Completion{Commands: true, FirstOnly: true}},
	{name: "manual", args: "", summary: "print the manual page binfmtctl(8) as roff (man -l - reads it)"},
	{name: "completion", args: "bash|zsh|fish", summary: "print the shell completion script for bash, zsh or fish",
		complete: clidoc.Completion{Words: []string{"bash", "zsh", "fish"}, FirstOnly: true}},
}

func lookup(name string) (command, bool) {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd, true
		}
	}
	return command{}, false
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
	var help, version bool
	topFlags(top, &c.globals, &help, &version)
	if err := top.Parse(args); err != nil {
		c.errorf("%v (see binfmtctl --help)", err)
		return exitUsage
	}
	switch {
	case version:
		fmt.Fprintf(out, "binfmtctl %s\n", Version)
		return exitOK
	case help:
		usage(out)
		return exitOK
	case len(top.Args()) == 0:
		c.errorf("no command given")
		usage(stderr)
		return exitUsage
	}
	name, rest := top.Args()[0], top.Args()[1:]
	cmd, ok := lookup(name)
	if !ok {
		unknownCommand(c, "", name)
		return exitUsage
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
		fmt.Fprintf(stderr, "usage: binfmtctl %s %s (see binfmtctl help %s)\n", name, cmd.args, name)
		return exitUsage
	}
	if subHelp {
		commandUsage(out, cmd)
		return exitOK
	}
	if cmd.run != nil {
		return cmd.run(c, fs.Args())
	}
	switch name {
	case "help":
		return runHelp(c, fs.Args())
	case "manual":
		return runManual(c, fs.Args())
	case "completion":
		return runCompletion(c, fs.Args())
	}
	panic("binfmtctl: command " + name + " has no run function")
}

// unknownCommand says that name is no command, suggesting the closest
// one, whether it was run or asked about (help NAME).
func unknownCommand(c *ctx, prefix, name string) {
	if s := suggest(name); s != "" {
		c.errorf("%sunknown command %q; did you mean %q? (see binfmtctl --help)", prefix, name, s)
	} else {
		c.errorf("%sunknown command %q (see binfmtctl --help)", prefix, name)
	}
}

func runHelp(c *ctx, args []string) int {
	switch len(args) {
	case 0:
		usage(c.stdout)
		return exitOK
	case 1:
		cmd, ok := lookup(args[0])
		if !ok {
			unknownCommand(c, "help: ", args[0])
			return exitUsage
		}
		commandUsage(c.stdout, cmd)
		return exitOK
	}
	c.errorf("help: want at most one COMMAND (usage: binfmtctl help [COMMAND])")
	return exitUsage
}

func runManual(c *ctx, args []string) int {
	if len(args) != 0 {
		c.errorf("manual: takes no arguments")
		return exitUsage
	}
	if err := Manual(c.stdout); err != nil {
		c.errorf("manual: %v", err)
		return exitFail
	}
	return exitOK
}

func runCompletion(c *ctx, args []string) int {
	if len(args) != 1 {
		c.errorf("completion: want one shell, bash, zsh or fish (usage: binfmtctl completion bash|zsh|fish)")
		return exitUsage
	}
	if !slices.Contains(clidoc.Shells, args[0]) {
		c.errorf("completion: unknown shell %q: want bash, zsh or fish", args[0])
		return exitUsage
	}
	if err := Completion(c.stdout, args[0]); err != nil {
		c.errorf("completion: %v", err)
		return exitFail
	}
	return exitOK
}

// commandFlags returns the flagSet a command parses, without the globals.
func commandFlags(cmd command) *flagSet {
	fs := &flagSet{}
	var help bool
	fs.Bool(&help, "help", "h", "show help")
	if cmd.flags != nil {
		cmd.flags(fs, &ctx{})
	}
	return fs
}

func commandUsage(w io.Writer, cmd command) {
	fmt.Fprintf(w, "usage: binfmtctl [global flags] %s [flags] %s\n\n%s\n\nflags:\n%s", cmd.name, cmd.args, cmd.summary, commandFlags(cmd).Usages())
	top := &flagSet{}
	var g globals
	g.register(top)
	fmt.Fprintf(w, "\nglobal flags:\n%s", top.Usages())
}

func usage(w io.Writer) {
	io.WriteString(w, `usage: binfmtctl [--binfmt-dir DIR] [--root DIR] [--state-dir DIR] COMMAND [ARGS]

Manage binfmt_misc entries one at a time, never flushing other tools' entries.

commands:
`)
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	sortStrings(names)
	for _, n := range names {
		c, _ := lookup(n)
		fmt.Fprintf(w, "  %-11s %s\n", n, c.summary)
	}
	top := &flagSet{}
	var g globals
	var help, version bool
	topFlags(top, &g, &help, &version)
	fmt.Fprintf(w, "\nglobal flags:\n%s\n%s\n", top.Usages(), exitCodesLine)
}

const exitCodesLine = "exit codes: 0 success, 1 something failed (partial failure included), 2 bad usage"

// suggest returns the command closest to name, or "" when none is close:
// within two edits, or one that name is a prefix of.
func suggest(name string) string {
	best, bestD := "", 3
	for _, c := range commands {
		d := editDistance(name, c.name)
		if len(name) >= 2 && strings.HasPrefix(c.name, name) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (with adjacent
// transpositions, the commonest typing slip) between a and b.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
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
	fs.AllowNative = c.force
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
		f, err := resolveConf(cfg, arg)
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
			if errors.Is(r.Err, binfmt.ErrNative) {
				c.errorf("%v; refusing it (binfmtctl register --force registers it anyway)", r.Err)
			} else {
				c.errorf("%v", r.Err)
			}
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

// resolveConf finds the binfmt.d file register is given: an absolute
// path, or a file name looked up as systemd-binfmt does, with or without
// its .conf ("qemu-aarch64" finds qemu-aarch64.conf).
func resolveConf(cfg binfmt.Config, arg string) (binfmt.File, error) {
	f, err := cfg.Resolve(arg)
	if errors.Is(err, fs.ErrNotExist) && !strings.Contains(arg, "/") && !strings.HasSuffix(arg, ".conf") {
		if g, gerr := cfg.Resolve(arg + ".conf"); gerr == nil {
			return g, nil
		}
	}
	return f, err
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

// runCatConfig prints the effective binfmt.d files as systemd-binfmt
// --cat-config does, byte for byte: for each file, sorted by name, a
// blank line between files, "# PATH", then the file's lines as written,
// comments included. A masked file shows as its header alone, as in
// systemd. What binfmtctl knows besides (masks, overridden files, names
// that several files define) is added as comments with --annotate; names
// that several files define are also named on stderr.
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
	definedIn := map[string][]string{}
	var order []string
	for i, f := range files {
		if i > 0 {
			io.WriteString(c.stdout, "\n")
		}
		writeStrings(c.stdout, "# ", f.Path, "\n")
		if c.annotate {
			if f.Masked {
				io.WriteString(c.stdout, "# binfmtctl: masked: defines nothing\n")
			}
			for _, s := range f.Shadowed {
				writeStrings(c.stdout, "# binfmtctl: overrides ", s, "\n")
			}
		}
		if f.Masked {
			continue
		}
		data, err := readConf(filepath.Join(cfg.Root, f.Path))
		if err != nil {
			c.errorf("cat-config: %s: %v", f.Path, err)
			code = exitFail
			continue
		}
		catLines(c.stdout, data)
		// The lines are parsed too, to report bad ones and the names
		// that several files define.
		lines, errs := cfg.Load(f)
		for _, err := range errs {
			c.errorf("%v", err)
			code = exitFail
		}
		for _, l := range lines {
			if !slices.Contains(definedIn[l.Name], f.Path) {
				if definedIn[l.Name] == nil {
					order = append(order, l.Name)
				}
				definedIn[l.Name] = append(definedIn[l.Name], f.Path)
			}
		}
	}
	for _, n := range order {
		if d := definedIn[n]; len(d) > 1 {
			c.errorf("warning: entry %q is defined by %d files: %s; the last one wins at boot", n, len(d), strings.Join(d, ", "))
			if c.annotate {
				writeStrings(c.stdout, "# binfmtctl: entry ", n, " is defined by ", strings.Join(d, ", "), "; the last one wins at boot\n")
			}
		}
	}
	return code
}

// catLines writes data as systemd's cat_file does: line by line with
// read_line, which ends a line at "\n", "\r\n", "\r" or NUL, and puts,
// which ends each with "\n". So a last line without a newline gains one.
func catLines(w io.Writer, data []byte) {
	var b strings.Builder
	start := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '\n', 0:
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				writeLine(&b, data[start:i])
				i++
				start = i + 1
				continue
			}
		default:
			continue
		}
		writeLine(&b, data[start:i])
		start = i + 1
	}
	if start < len(data) {
		writeLine(&b, data[start:])
	}
	io.WriteString(w, b.String())
}

// writeLine writes l and a newline: one copy of the Builder's writes for
// catLines' three callers keeps binfmtctl small.
//
//go:noinline
func writeLine(b *strings.Builder, l []byte) {
	b.Write(l)
	b.WriteByte('\n')
}

// maxConf caps what cat-config reads of one file: binfmt.d files are a
// few hundred bytes, and any user may run cat-config.
const maxConf = 1 << 20

// readConf reads a binfmt.d file without blocking on a FIFO put in its
// place: it is opened non-blocking and must be a regular file or a
// character device (a mask, read as empty).
func readConf(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode()&os.ModeCharDevice != 0:
		return nil, nil
	case !fi.Mode().IsRegular():
		return nil, errorf("not a regular file (%v)", fi.Mode().Type())
	case fi.Size() > maxConf:
		return nil, errorf("%d bytes, more than the %d a binfmt.d file may have", fi.Size(), maxConf)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConf+1))
	if err == nil && len(data) > maxConf {
		err = errorf("more than the %d bytes a binfmt.d file may have", maxConf)
	}
	return data, err
}

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
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
