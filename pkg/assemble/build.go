package assemble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmfile"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

// Defaults for Options.
const (
	DefaultVersion = "0.1.0"
	DefaultRelease = "1"
	// DefaultSpec is qemu-user-static-go's package definition, relative
	// to the source directory.
	DefaultSpec = "spec/nfpm.yaml"
	// DefaultHelperSpec is binfmtctl's package definition.
	DefaultHelperSpec = "spec/binfmtctl.yaml"
	// ModulePath identifies the source directory: the go.mod that
	// declares it.
	ModulePath = "github.com/qemu-user-static-go/qemu-user-static-go"
)

// Where the package puts things.
const (
	binDir    = "/usr/bin"
	binfmtDir = "/usr/lib/binfmt.d"
)

// Options describe one package build.
type Options struct {
	// SourceDir is the repository: the spec, the scriptlets and the
	// helper's sources. "" finds it from the working directory (see
	// FindSourceDir).
	SourceDir string
	// Spec is qemu-user-static-go's nfpm package definition; "" is
	// DefaultSpec. A relative path is taken in SourceDir.
	Spec string
	// HelperSpec is binfmtctl's package definition; "" is
	// DefaultHelperSpec.
	HelperSpec string
	// Triggers declares the packages' file triggers; "" is
	// DefaultTriggers. A relative path is taken in SourceDir; a missing
	// file declares none.
	Triggers string
	// QemuDir holds the qemu-<cpu>-static interpreters; "" is /usr/bin.
	QemuDir string
	// QemuSuffix ends the interpreters' names in QemuDir,
	// qemu-<cpu><suffix>; nil is DefaultQemuSuffix. They are installed as
	// qemu-<cpu>-static whatever it is.
	QemuSuffix *string
	// CPUs are the targets to package. Empty means every target whose
	// interpreter is in QemuDir, except the host family's.
	CPUs []string
	// Version and Release of the package; "" gives DefaultVersion and
	// DefaultRelease.
	Version, Release string
	// OutputDir receives NAME-VERSION-RELEASE.ARCH.rpm; "" is the
	// working directory.
	OutputDir string
	// Compression is a preset ("small", "fast", "smallest"); "" is
	// DefaultCompression.
	Compression string
	// Preserve sets flag P (keep argv[0]) and Credentials flag C (run
	// with the binary's credentials, which implies O) in the generated
	// binfmt.d files. C is off by default for the reasons in pkg/qemu;
	// binfmtctl refuses it unless the interpreters are root's alone.
	Preserve, Credentials bool
	// SignKey is an OpenPGP private key file to sign the package with,
	// unlocked with SignPassphrase if it is protected.
	SignKey, SignPassphrase string
	// Binfmtctl is a binfmtctl already built for the package's
	// architecture; "" builds it from SourceDir with the go command.
	Binfmtctl string
	// SourceDateEpoch is the time of every file and of the build. Zero
	// means SourceDateEpoch(SourceDir).
	SourceDateEpoch time.Time
	// TempDir holds the build's scratch files; "" is os.TempDir(), and
	// OutputDir for the compressed payload.
	TempDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Progress, if set, is called as the payload is compressed (the
	// presets only: nfpm's packager compresses in memory and does not
	// say how far it is), from one goroutine at a time.
	Progress func(Progress)
}

// Result describes a build: qemu-user-static-go's package in the
// top-level fields, as before there were two, and every package written
// in Packages, qemu-user-static-go's last.
type Result struct {
	Path        string    `json:"path"`
	NEVRA       string    `json:"nevra"`
	Arch        string    `json:"arch"`
	CPUs        []string  `json:"cpus"`
	Compression string    `json:"compression"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Packages    []Package `json:"packages"`
}

// Package is one package a build wrote.
type Package struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	NEVRA  string `json:"nevra"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Build builds the packages, binfmtctl's and qemu-user-static-go's, and
// returns where it wrote them.
func Build(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	comp, err := parseCompression(opts.Compression)
	if err != nil {
		return nil, err
	}
	src := opts.SourceDir
	if src == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("finding the source directory: %w", err)
		}
		if src, err = FindSourceDir(wd); err != nil {
			return nil, err
		}
	}
	if src, err = filepath.Abs(src); err != nil {
		return nil, fmt.Errorf("finding the source directory: %w", err)
	}
	version, release := or(opts.Version, DefaultVersion), or(opts.Release, DefaultRelease)
	if err := checkVersion("version", version); err != nil {
		return nil, err
	}
	if err := checkVersion("release", release); err != nil {
		return nil, err
	}
	epoch := opts.SourceDateEpoch
	if epoch.IsZero() {
		var from string
		if epoch, from, err = SourceDateEpoch(src); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "SOURCE_DATE_EPOCH=%d (%s)\n", epoch.Unix(), from)
	}
	qemuDir := or(opts.QemuDir, qemu.DefaultBinDir)

	suffix := DefaultQemuSuffix
	if opts.QemuSuffix != nil {
		suffix = *opts.QemuSuffix
	}
	sel, err := selectTargets(qemuDir, suffix, opts.CPUs)
	if err != nil {
		return nil, err
	}
	var cpus []string
	for _, t := range sel.targets {
		cpus = append(cpus, t.CPU)
	}
	fmt.Fprintf(log, "packaging %d targets for %s from %s: %s\n", len(cpus), sel.arch.rpm, qemuDir, strings.Join(cpus, " "))
	for _, s := range sel.skipped {
		fmt.Fprintf(log, "skipped %s: %s\n", strings.Join(s.names, " "), s.why)
	}

	stage, err := os.MkdirTemp(opts.TempDir, "qemu-user-static-go-build-*")
	if err != nil {
		return nil, fmt.Errorf("creating the build directory: %w", err)
	}
	defer os.RemoveAll(stage)

	full := version + "-" + release
	helper := filepath.Join(stage, "binfmtctl")
	if opts.Binfmtctl != "" {
		a, err := archOf(opts.Binfmtctl)
		if err != nil {
			return nil, err
		}
		if a.rpm != sel.arch.rpm {
			return nil, fmt.Errorf("using binfmtctl %q: it is built for %s, the package is for %s", opts.Binfmtctl, a.rpm, sel.arch.rpm)
		}
		if err := copyFile(opts.Binfmtctl, helper); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintf(log, "building binfmtctl %s for %s\n", full, sel.arch.rpm)
		if err := buildHelper(ctx, src, helper, sel.arch, full); err != nil {
			return nil, err
		}
	}
	if err := writeHelperDocs(ctx, src, helper, filepath.Join(stage, "docs"), full); err != nil {
		return nil, err
	}

	confs, err := qemu.Generate(cpus, sel.arch.rpm, qemu.Options{IncludeHostFamily: sel.explicit, Preserve: opts.Preserve, Credentials: opts.Credentials})
	if err != nil {
		return nil, err
	}
	if len(confs) != len(cpus) {
		return nil, fmt.Errorf("generating binfmt.d files: got %d files for %d cpus", len(confs), len(cpus))
	}

	vars := map[string]string{
		"VERSION":    version,
		"RELEASE":    release,
		"ARCH":       sel.arch.rpm,
		"SOURCE_DIR": src,
		"STAGE_DIR":  stage,
	}
	// The helper's package first: the last package written, and the
	// last line the build tool prints, is qemu-user-static-go's.
	var pkgs []*pkgBuild
	for _, spec := range []string{or(opts.HelperSpec, DefaultHelperSpec), or(opts.Spec, DefaultSpec)} {
		if !filepath.IsAbs(spec) {
			spec = filepath.Join(src, spec)
		}
		p, err := preparePackage(spec, src, stage, vars, opts, epoch)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	main := pkgs[len(pkgs)-1]
	info := main.info

	var names []string
	for name := range sel.interpreters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		info.Contents = append(info.Contents, &files.Content{
			Source:      sel.interpreters[name],
			Destination: binDir + "/" + name,
			Type:        files.TypeFile,
			FileInfo:    &files.ContentFileInfo{Mode: 0o755},
		})
	}
	confDir := filepath.Join(stage, "binfmt.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		return nil, fmt.Errorf("staging binfmt.d files: %w", err)
	}
	conflicts := map[string]bool{}
	for _, c := range confs {
		p := filepath.Join(confDir, c.Name)
		if err := os.WriteFile(p, c.Data, 0o644); err != nil {
			return nil, fmt.Errorf("staging binfmt.d files: %w", err)
		}
		info.Contents = append(info.Contents, &files.Content{
			Source:      p,
			Destination: binfmtDir + "/" + c.Name,
			Type:        files.TypeFile,
			FileInfo:    &files.ContentFileInfo{Mode: 0o644},
		})
		conflicts[fedoraSubpackage(c.CPU)] = true
	}
	// rpmbuild's file attribute generator finds these in the spec build,
	// and marks generated dependencies with RPMSENSE_FIND_REQUIRES.
	for name := range conflicts {
		main.conflicts = append(main.conflicts, rpmfile.Dependency{Name: name, Flags: rpmfile.SenseFindRequires})
	}

	var built []string
	for _, p := range pkgs {
		built = append(built, p.info.Name)
	}
	for _, p := range pkgs {
		vars := map[string]string{"name": p.info.Name, "version": version, "release": release, "arch": sel.arch.rpm}
		if p.triggers, err = loadTriggers(src, or(opts.Triggers, DefaultTriggers), p.info.Name, built, vars); err != nil {
			return nil, err
		}
	}

	outDir := or(opts.OutputDir, ".")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	res := &Result{Arch: sel.arch.rpm, CPUs: cpus, Compression: comp.name}
	for _, p := range pkgs {
		path := filepath.Join(outDir, rpmfile.FileName(p.info))
		fmt.Fprintf(log, "writing %s with %s compression\n", path, comp.name)
		size, sum, err := writeAtomically(path, func(w io.Writer) error {
			// The compressed payload waits next to the package rather
			// than in a /tmp that may be memory.
			return rpmfile.Write(w, p.info, rpmfile.Options{
				Compressor: *comp.preset, TempDir: or(opts.TempDir, outDir),
				Conflicts: p.conflicts, Triggers: p.triggers, Progress: progressFunc(opts.Progress, path),
				// One source, as the spec builds both: qemu-user-static-go's.
				SourceRPM: main.info.Name + "-" + rpmfile.FullVersion(main.info) + ".src.rpm",
			})
		})
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		res.Packages = append(res.Packages, Package{
			Name: p.info.Name, Path: path, NEVRA: strings.TrimSuffix(rpmfile.FileName(p.info), ".rpm"),
			Size: size, SHA256: sum,
		})
	}
	last := res.Packages[len(res.Packages)-1]
	res.Path, res.NEVRA, res.Size, res.SHA256 = last.Path, last.NEVRA, last.Size, last.SHA256
	return res, nil
}

// pkgBuild is one package of the build on its way to the writer.
type pkgBuild struct {
	info      *nfpm.Info
	conflicts []rpmfile.Dependency
	triggers  []rpmfile.FileTrigger
}

// preparePackage reads one package definition and fills in what every
// package of the build shares: the build time, the signing key, the
// changelog's path and the expanded scriptlets.
func preparePackage(spec, src, stage string, vars map[string]string, opts Options, epoch time.Time) (*pkgBuild, error) {
	info, err := loadSpec(spec, vars, opts.SignPassphrase)
	if err != nil {
		return nil, err
	}
	info.MTime = epoch.UTC()
	info.DisableGlobbing = true
	if opts.SignKey != "" {
		info.RPM.Signature.KeyFile = opts.SignKey
	}
	if info.Changelog != "" {
		if !filepath.IsAbs(info.Changelog) {
			info.Changelog = filepath.Join(src, info.Changelog)
		}
		// chglog takes a missing file for an empty changelog.
		if _, err := os.Stat(info.Changelog); err != nil {
			return nil, fmt.Errorf("reading package definition %q: changelog: %w", spec, err)
		}
	}
	dir := filepath.Join(stage, "pkg-"+info.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("staging package %s: %w", info.Name, err)
	}
	if err := stageScripts(info, src, dir, map[string]string{
		"name": info.Name, "version": vars["VERSION"], "release": vars["RELEASE"], "arch": vars["ARCH"],
	}); err != nil {
		return nil, err
	}
	return &pkgBuild{info: info}, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkVersion rejects what rpm would not take in a version or release:
// rpm forbids "-" there, and whitespace or "/" would break the file name.
func checkVersion(what, v string) error {
	if strings.ContainsAny(v, "- \t\n/") {
		return fmt.Errorf("%s %q: rpm does not allow '-', '/' or whitespace in it", what, v)
	}
	return nil
}

// loadSpec reads the nfpm package definition, expanding only the
// placeholders in vars: the environment does not leak into the package.
func loadSpec(path string, vars map[string]string, passphrase string) (*nfpm.Info, error) {
	var unknown []string
	mapping := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		switch name {
		case "NFPM_PASSPHRASE", "NFPM_RPM_PASSPHRASE":
			// nfpm looks these up for every package; they are how
			// it unlocks the signing key.
			return passphrase
		case "NFPM_DEB_PASSPHRASE", "NFPM_APK_PASSPHRASE":
			return ""
		}
		unknown = append(unknown, "${"+name+"}")
		return ""
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(path, mapping)
	if err != nil {
		return nil, fmt.Errorf("reading package definition %q: %w", path, err)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("reading package definition %q: %s not defined by the build (it defines %s)", path, strings.Join(unknown, ", "), placeholderNames(vars))
	}
	info, err := cfg.Get("rpm")
	if err != nil {
		return nil, fmt.Errorf("reading package definition %q: %w", path, err)
	}
	return info, nil
}

func placeholderNames(vars map[string]string) string {
	var names []string
	for n := range vars {
		names = append(names, "${"+n+"}")
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// stageScripts expands the macros of each scriptlet the spec names
// (relative to the source directory) into the stage, and points the spec
// at the expanded copy.
func stageScripts(info *nfpm.Info, src, stage string, vars map[string]string) error {
	scripts := []*string{
		&info.Scripts.PreInstall, &info.Scripts.PostInstall,
		&info.Scripts.PreRemove, &info.Scripts.PostRemove,
		&info.RPM.Scripts.PreTrans, &info.RPM.Scripts.PostTrans,
		&info.RPM.Scripts.Verify,
	}
	dir := filepath.Join(stage, "scriptlets")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("staging scriptlets: %w", err)
	}
	for i, p := range scripts {
		if *p == "" {
			continue
		}
		path := *p
		if !filepath.IsAbs(path) {
			path = filepath.Join(src, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading scriptlet: %w", err)
		}
		body, err := scriptlets.Expand(path, string(data), vars)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(path)))
		if err := os.WriteFile(out, []byte(body), 0o644); err != nil {
			return fmt.Errorf("staging scriptlet: %w", err)
		}
		*p = out
	}
	return nil
}

// buildHelper builds cmd/binfmtctl static for a, stamping version into
// it. -trimpath, an empty build id and no VCS stamp make the binary
// depend only on the sources and the Go toolchain.
func buildHelper(ctx context.Context, src, out string, a arch, version string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building binfmtctl: the go command is not in PATH (install Go from https://go.dev/dl or apt-get install golang-go), or pass a built binfmtctl: %w", err)
	}
	ldflags := strings.Join([]string{
		"-s", "-w", "-buildid=",
		"-X", "main.version=" + version,
		"-X", ModulePath + "/pkg/binfmtctl.Version=" + version,
	}, " ")
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/binfmtctl")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.goarch)
	if a.goarm != "" {
		cmd.Env = append(cmd.Env, "GOARM="+a.goarm)
	}
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building binfmtctl in %s (go build ./cmd/binfmtctl for %s): %w\n%s", src, a.goarch, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copying %q: %w", from, err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		return fmt.Errorf("copying %q: %w", from, err)
	}
	return nil
}

// writeAtomically writes path through write into a temporary file next to
// it and renames it into place, so that a failed build leaves no partial
// package where a finished one is expected. It returns the size and hex
// SHA-256 of what was written.
func writeAtomically(path string, write func(io.Writer) error) (int64, string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &counter{}
	if err := write(io.MultiWriter(tmp, h, cw)); err != nil {
		tmp.Close()
		return 0, "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return 0, "", err
	}
	if err := tmp.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// FindSourceDir returns the first directory from dir upwards whose go.mod
// declares ModulePath.
func FindSourceDir(dir string) (string, error) {
	for d := dir; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+ModulePath)) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("finding the source directory: no go.mod of %s in %s or above; run from the repository or pass --source-dir", ModulePath, dir)
		}
		d = parent
	}
}

// DefaultEpoch is the build time when neither SOURCE_DATE_EPOCH nor git
// gives one: fixed, so that builds stay reproducible.
var DefaultEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// SourceDateEpoch returns the time to stamp a build with, and where it
// came from: $SOURCE_DATE_EPOCH if set, else the time of the last commit
// of the git repository at dir, else DefaultEpoch. (reproducible-builds.org
// recommends the last commit's time: it changes only with the sources.)
// A SOURCE_DATE_EPOCH that is not a number of seconds is an error.
func SourceDateEpoch(dir string) (time.Time, string, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s < 0 || s > math.MaxUint32 {
			return time.Time{}, "", fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970 that rpm can hold", v)
		}
		return time.Unix(s, 0).UTC(), "from $SOURCE_DATE_EPOCH", nil
	}
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err == nil {
		var s int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d", &s); err == nil && s > 0 {
			return time.Unix(s, 0).UTC(), "time of the last git commit", nil
		}
	}
	return DefaultEpoch, "fixed default", nil
}
