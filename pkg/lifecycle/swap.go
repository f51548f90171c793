package lifecycle

import (
	"path/filepath"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// LeftBehind is the swap rule (docs/lifecycle.md, "The swap from Fedora's
// package"): a live entry that no binfmt.d file on disk defines any more,
// and whose interpreter path is one of the package's own files, was left
// behind by a removed package, the one whose files this package now
// holds (Fedora's qemu-user-static-<group>, whose scriptlets never
// unregister). It is not someone else's: the package's hook replaces it
// with its own definition and claims it.
//
// files is the package's file list, onDisk what the binfmt.d files on
// disk define now, by name (Manager.onDisk).
func LeftBehind(live binfmt.Live, files []string, onDisk map[string]binfmt.Line) bool {
	if d, ok := onDisk[live.Name]; ok && live.Matches(d.Entry) {
		return false
	}
	interp := filepath.Clean(live.Interpreter)
	for _, f := range files {
		if filepath.Clean(f) == interp {
			return true
		}
	}
	return false
}

// leftBehind is LeftBehind with the files on disk read now.
func (m *Manager) leftBehind(live binfmt.Live, files []string) bool {
	disk, _ := m.onDisk()
	return LeftBehind(live, files, disk)
}

// fileOwners names, for each entry no record claims, the installed
// package whose binfmt.d file defines it exactly as it is live: a package
// that never calls the hooks (or whose record is gone) still owns what
// its files define. One rpm query covers every such file.
func (m *Manager) fileOwners(entries []EntryStatus, lives []binfmt.Live) {
	q, ok := m.RPM.(OwnerQuerier)
	if !ok {
		return
	}
	disk, _ := m.onDisk()
	want := map[int]string{}
	var paths []string
	for i, e := range entries {
		if e.Owner != "" || i >= len(lives) {
			continue
		}
		d, ok := disk[e.Name]
		if !ok || !lives[i].Matches(d.Entry) {
			continue
		}
		want[i] = d.File
		paths = append(paths, d.File)
	}
	if len(paths) == 0 {
		return
	}
	owners, err := q.Owners(dedupe(paths))
	if err != nil {
		return
	}
	for i, p := range want {
		if os := owners[p]; len(os) > 0 {
			entries[i].Owner = os[0].Name
		}
	}
}
