package lifecycle

import (
	"path/filepath"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// hasPath reports whether p, cleaned, is one of files: the swap rule's
// "the interpreter path is one of the package's own files" (Plan).
func hasPath(files []string, p string) bool {
	p = filepath.Clean(p)
	for _, f := range files {
		if filepath.Clean(f) == p {
			return true
		}
	}
	return false
}

// fileOwners names, for each entry no record claims, the installed
// package whose binfmt.d file defines it exactly as it is live: a package
// that never calls the hooks (or whose record is gone) still owns what
// its files define. One rpm query covers every such file.
func (m *Manager) fileOwners(entries []EntryStatus, lives []binfmt.Live) {
	if m.RPM == nil {
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
	owners, err := m.RPM.Owners(dedupe(paths))
	if err != nil {
		return
	}
	for i, p := range want {
		if os := owners[p]; len(os) > 0 {
			entries[i].Owner = os[0]
		}
	}
}
