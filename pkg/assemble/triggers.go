package assemble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmfile"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

// DefaultTriggers is the file that declares the packages' file triggers,
// relative to the source directory.
const DefaultTriggers = "spec/triggers.yaml"

// Trigger is one entry of spec/triggers.yaml: an rpm file trigger and the
// packages that carry it.
type Trigger struct {
	// Packages are the names of the built packages that carry it.
	Packages []string `yaml:"packages"`
	// Kind is the spec section: filetriggerin, filetriggerun,
	// filetriggerpostun, transfiletriggerin, transfiletriggerun or
	// transfiletriggerpostun.
	Kind string `yaml:"kind"`
	// Priority is -P; 0 or absent is rpm's default, 1000000.
	Priority uint32 `yaml:"priority"`
	// Prefixes are the path prefixes after "--".
	Prefixes []string `yaml:"prefixes"`
	// Prog is -p: /bin/sh when absent, or <lua>.
	Prog string `yaml:"prog"`
	// Script is the body's file, relative to the source directory. Its
	// %{name}, %{version}, %{release} and %{arch} are expanded as in
	// the scriptlets.
	Script string `yaml:"script"`
}

type triggerFile struct {
	Triggers []Trigger `yaml:"triggers"`
}

// ParseTriggers reads spec/triggers.yaml. Unknown fields, kinds and
// interpreters are errors, so that a typo never silently drops a trigger.
func ParseTriggers(name string, r io.Reader) ([]Trigger, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f triggerFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	for i, tr := range f.Triggers {
		where := fmt.Sprintf("%s: trigger %d", name, i+1)
		if len(tr.Packages) == 0 {
			return nil, fmt.Errorf("%s: no packages", where)
		}
		if tr.Script == "" {
			return nil, fmt.Errorf("%s: no script", where)
		}
		if filepath.IsAbs(tr.Script) || strings.HasPrefix(filepath.Clean(tr.Script), "..") {
			return nil, fmt.Errorf("%s: script %q is not a path inside the source directory", where, tr.Script)
		}
		k, err := rpmfile.ParseTriggerKind(tr.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		check := rpmfile.FileTrigger{Kind: k, Priority: tr.Priority, Prefixes: tr.Prefixes, Prog: tr.Prog}
		if err := check.Check(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return f.Triggers, nil
}

// loadTriggers reads the triggers file in src, if there is one, and
// returns the triggers of package pkg with their bodies read and
// expanded. A trigger naming a package that the build does not make is
// an error.
func loadTriggers(src, file, pkg string, built []string, vars map[string]string) ([]rpmfile.FileTrigger, error) {
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(src, file)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading file triggers: %w", err)
	}
	defer f.Close()
	list, err := ParseTriggers(file, f)
	if err != nil {
		return nil, err
	}
	var out []rpmfile.FileTrigger
	for i, tr := range list {
		for _, p := range tr.Packages {
			if !slices.Contains(built, p) {
				return nil, fmt.Errorf("%s: trigger %d: package %q is not built (the build makes %s)", file, i+1, p, strings.Join(built, ", "))
			}
		}
		if !slices.Contains(tr.Packages, pkg) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, tr.Script))
		if err != nil {
			return nil, fmt.Errorf("%s: trigger %d: reading its script: %w", file, i+1, err)
		}
		body, err := scriptlets.Expand(tr.Script, string(data), vars)
		if err != nil {
			return nil, err
		}
		k, _ := rpmfile.ParseTriggerKind(tr.Kind)
		out = append(out, rpmfile.FileTrigger{
			Kind: k, Priority: tr.Priority, Prefixes: tr.Prefixes, Prog: tr.Prog,
			// rpmbuild ends a body at its last line's newline; so
			// does this, so that both builds carry the same bytes.
			Script: strings.TrimRight(body, "\n"),
		})
	}
	return out, nil
}
