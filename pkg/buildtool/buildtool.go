// Package buildtool is the command line of qemu-user-static-go: build the
// package, inspect any rpm, and generate binfmt.d files. Each subcommand
// checks its flags and makes one call into pkg/assemble, pkg/inspect or
// pkg/qemu.
package buildtool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed, or lint found problems
	exitUsage = 2 // the command line was wrong
)

type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"build", "[flags]", "build the qemu-user-static-go rpm and the binfmtctl one; the last line printed is its path", runBuild},
		{"inspect", "FILE.rpm [--json]", "show an rpm's identity, digests, scriptlets and binfmt entries, and lint them", runInspect},
		{"conf", "[flags]", "write the binfmt.d files the package ships", runConf},
	}
}

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "qemu-user-static-go: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: qemu-user-static-go COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-18s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun qemu-user-static-go COMMAND --help for its flags.")
}

// parse parses a subcommand's flags; done is true when the caller should
// return code (help was asked for, or the flags were wrong).
func parse(fs *pflag.FlagSet, args []string, stderr io.Writer, usageLine string) (code int, done bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: qemu-user-static-go %s\n\n%s", usageLine, fs.FlagUsages())
	}
	help := fs.BoolP("help", "h", false, "show help")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK, true
		}
		fmt.Fprintf(stderr, "qemu-user-static-go %s: %v\n", fs.Name(), err)
		return exitUsage, true
	}
	if *help {
		fs.Usage()
		return exitOK, true
	}
	return 0, false
}

func runBuild(args []string, stdout, stderr io.Writer) int {
	var o assemble.Options
	fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
	fs.StringVar(&o.QemuDir, "qemu-dir", qemu.DefaultBinDir, "directory of the qemu-<cpu>-static interpreters")
	fs.StringSliceVar(&o.CPUs, "cpus", nil, "comma-separated targets to package (default: every target with an interpreter, except the host family's)")
	fs.StringVar(&o.Version, "version", assemble.DefaultVersion, "package version")
	fs.StringVar(&o.Release, "release", assemble.DefaultRelease, "package release")
	fs.StringVar(&o.OutputDir, "output", ".", "directory to write the rpm into")
	fs.StringVar(&o.Compression, "compression", assemble.DefaultCompression, "payload compression: "+strings.Join(assemble.Compressions(), ", "))
	fs.StringVar(&o.SignKey, "sign-key", "", "OpenPGP private key to sign with (passphrase from $NFPM_RPM_PASSPHRASE or $NFPM_PASSPHRASE)")
	fs.StringVar(&o.SourceDir, "source-dir", "", "the repository with spec/, scriptlets/ and cmd/binfmtctl (default: found from the working directory)")
	fs.StringVar(&o.Binfmtctl, "binfmtctl", "", "use this binfmtctl instead of building it")
	fs.BoolVar(&o.Preserve, "preserve-argv0", false, "set flag P in the binfmt.d files")
	fs.BoolVar(&o.Credentials, "credentials", false, "set flag C (and so O) in the binfmt.d files; see pkg/qemu for why this is off")
	asJSON := fs.Bool("json", false, "print both packages' paths, NEVRAs, sizes and digests as JSON")
	if code, done := parse(fs, args, stderr, "build [flags]"); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qemu-user-static-go build: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if o.SignKey != "" {
		o.SignPassphrase = os.Getenv("NFPM_RPM_PASSPHRASE")
		if o.SignPassphrase == "" {
			o.SignPassphrase = os.Getenv("NFPM_PASSPHRASE")
		}
	}
	o.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := assemble.Build(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "qemu-user-static-go build: %v\n", err)
		return exitFail
	}
	for _, p := range res.Packages {
		fmt.Fprintf(stderr, "wrote %s: %d bytes, sha256 %s\n", p.NEVRA, p.Size, p.SHA256)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "qemu-user-static-go build: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	// One path a line, qemu-user-static-go's last: scripts that take
	// the last line keep getting it.
	for _, p := range res.Packages {
		fmt.Fprintln(stdout, p.Path)
	}
	return exitOK
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("inspect", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	host := fs.String("host", "", "architecture of the machine the package would be installed on, for the host-family lint (default: the package's architecture; this machine's for noarch)")
	keyring := fs.String("keyring", "", "OpenPGP public keys to verify signatures with (default: only report the signing key ids)")
	if code, done := parse(fs, args, stderr, "inspect FILE.rpm [--json] [--host ARCH] [--keyring FILE]"); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "qemu-user-static-go inspect: want exactly one FILE.rpm")
		return exitUsage
	}
	opts := inspect.Options{Host: *host, DefaultHost: runtime.GOARCH}
	if *keyring != "" {
		keys, err := inspect.ReadKeyring(*keyring)
		if err != nil {
			fmt.Fprintf(stderr, "qemu-user-static-go inspect: %v\n", err)
			return exitFail
		}
		opts.Keyring = keys
	}
	rep, err := inspect.File(fs.Arg(0), opts)
	if err != nil {
		fmt.Fprintf(stderr, "qemu-user-static-go inspect: %v\n", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "qemu-user-static-go inspect: %v\n", err)
			return exitFail
		}
	} else {
		rep.WriteText(stdout)
	}
	if probs := rep.Errors(); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintf(stderr, "%s: %s\n", fs.Arg(0), p)
		}
		return exitFail
	}
	return exitOK
}

func runConf(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("conf", pflag.ContinueOnError)
	cpus := fs.StringSlice("cpus", nil, "comma-separated targets (default: every target)")
	host := fs.String("host", runtime.GOARCH, "architecture of the machine the files are for (GOARCH or uname -m); its family is left out unless --cpus names it")
	out := fs.String("output", "", "directory to write qemu-<cpu>-static.conf files into (default: print them)")
	var o qemu.Options
	fs.StringVar(&o.BinDir, "bindir", qemu.DefaultBinDir, "directory of the interpreters on the target machine")
	fs.BoolVar(&o.Preserve, "preserve-argv0", false, "set flag P")
	fs.BoolVar(&o.Credentials, "credentials", false, "set flag C (and so O); see pkg/qemu for why this is off")
	if code, done := parse(fs, args, stderr, "conf [--cpus LIST] [--host ARCH] [--output DIR]"); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qemu-user-static-go conf: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	o.IncludeHostFamily = len(*cpus) > 0
	confs, err := qemu.Generate(*cpus, *host, o)
	if err != nil {
		fmt.Fprintf(stderr, "qemu-user-static-go conf: %v\n", err)
		return exitFail
	}
	for _, c := range confs {
		if *out == "" {
			fmt.Fprintf(stdout, "# %s\n%s", c.Name, c.Data)
			continue
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintf(stderr, "qemu-user-static-go conf: %v\n", err)
			return exitFail
		}
		p := filepath.Join(*out, c.Name)
		if err := os.WriteFile(p, c.Data, 0o644); err != nil {
			fmt.Fprintf(stderr, "qemu-user-static-go conf: %v\n", err)
			return exitFail
		}
		fmt.Fprintln(stdout, p)
	}
	return exitOK
}
