package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// PackageSpec describes a small RPM for a test.
type PackageSpec struct {
	Name    string
	Epoch   string // "" for none
	Version string // used as is, not parsed as semver
	Release string // default "1"
	Arch    string // RPM arch; default "noarch"

	Files []File

	// Scriptlet bodies, run by /bin/sh. Empty means none.
	Pre, Post, PreUn, PostUn, PreTrans, PostTrans string

	// Relations in RPM syntax, such as "foo >= 1.2" or "/bin/sh".
	Provides, Requires, Conflicts, Obsoletes []string

	// Compression is nfpm's payload compression ("gzip", "zstd:fastest",
	// "xz", ...); default "gzip".
	Compression string

	// Triggers are file triggers. nfpm cannot write them, so a package
	// with triggers is built with rpmbuild instead (see Trigger).
	Triggers []Trigger
}

// File is one entry of a test package.
type File struct {
	Dst     string      // absolute path in the package
	Src     string      // host file to copy, or the target of a symlink
	Content []byte      // file content, used when Src is empty
	Mode    os.FileMode // permission bits; default 0644, or 0755 for dirs
	// Type is an nfpm content type: "" (a file), "dir", "symlink",
	// "config", "config|noreplace", "ghost".
	Type string
}

// mtime is the fixed build and file time of test packages, so that the
// same spec gives the same bytes.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildRPM builds the package with nfpm, in process, into a temporary
// directory and returns the path of the .rpm file.
func BuildRPM(t testing.TB, p PackageSpec) string {
	t.Helper()
	path, err := buildRPM(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// ShellProvider is a package that provides /bin/sh and contains nothing.
// rpm makes every shell scriptlet require /bin/sh, and an empty rpm
// database provides nothing, so a fresh root needs this package installed,
// in a transaction of its own, before any package with scriptlets. The
// shell itself comes from the host.
func ShellProvider() PackageSpec {
	return PackageSpec{
		Name:     "sandbox-sh",
		Version:  "1",
		Provides: []string{"/bin/sh", "/usr/bin/sh"},
	}
}

func buildRPM(dir string, p PackageSpec) (string, error) {
	if p.Release == "" {
		p.Release = "1"
	}
	if p.Arch == "" {
		p.Arch = "noarch"
	}
	if p.Compression == "" {
		p.Compression = "gzip"
	}
	if len(p.Triggers) > 0 {
		return buildSpecRPM(dir, p)
	}
	info := &nfpm.Info{
		Name:          p.Name,
		Epoch:         p.Epoch,
		Arch:          p.Arch,
		Platform:      "linux",
		Version:       p.Version,
		VersionSchema: "none",
		Release:       p.Release,
		Description:   "test package " + p.Name,
		License:       "MIT",
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Provides:  p.Provides,
			Depends:   p.Requires,
			Conflicts: p.Conflicts,
			Replaces:  p.Obsoletes,
			RPM: nfpm.RPM{
				Arch:        p.Arch,
				BuildHost:   "sandbox",
				Compression: p.Compression,
			},
		},
	}

	src, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", p.Name, err)
	}
	defer os.RemoveAll(src)

	// nfpm reads contents and scriptlets from files, so inline ones are
	// written out first.
	for i, f := range p.Files {
		c := &files.Content{
			Destination: f.Dst,
			Source:      f.Src,
			Type:        f.Type,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: f.Mode, MTime: mtime},
		}
		if c.FileInfo.Mode == 0 {
			c.FileInfo.Mode = 0o644
			if f.Type == files.TypeDir {
				c.FileInfo.Mode = 0o755
			}
		}
		if f.Src == "" && f.Type != files.TypeDir && f.Type != files.TypeRPMGhost {
			c.Source = filepath.Join(src, fmt.Sprintf("file%d", i))
			if err := os.WriteFile(c.Source, f.Content, 0o644); err != nil {
				return "", fmt.Errorf("building %s: writing content of %q: %w", p.Name, f.Dst, err)
			}
		}
		info.Contents = append(info.Contents, c)
	}
	scripts := []struct {
		body string
		dst  *string
	}{
		{p.Pre, &info.Scripts.PreInstall},
		{p.Post, &info.Scripts.PostInstall},
		{p.PreUn, &info.Scripts.PreRemove},
		{p.PostUn, &info.Scripts.PostRemove},
		{p.PreTrans, &info.RPM.Scripts.PreTrans},
		{p.PostTrans, &info.RPM.Scripts.PostTrans},
	}
	for i, s := range scripts {
		if s.body == "" {
			continue
		}
		name := filepath.Join(src, fmt.Sprintf("script%d", i))
		if err := os.WriteFile(name, []byte(s.body), 0o644); err != nil {
			return "", fmt.Errorf("building %s: writing a scriptlet: %w", p.Name, err)
		}
		*s.dst = name
	}

	out := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Arch))
	f, err := os.Create(out)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", p.Name, err)
	}
	if err := rpm.DefaultRPM.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("building %s with nfpm: %w", p.Name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("building %s: writing %q: %w", p.Name, out, err)
	}
	return out, nil
}
