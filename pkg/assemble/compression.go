package assemble

import (
	"fmt"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmfile"
)

// DefaultCompression is the payload compression Build uses when none is
// given.
const DefaultCompression = "small"

// presets are the compressions rpmfile writes. Measured here (2 cores)
// on the default package of Debian 12's interpreters, 31 of them and
// binfmtctl, 340 MiB: a 32 MiB window reaches back over whole
// interpreters, which share most of their code, so each preset is under
// half the size rpmbuild makes at Fedora's zstd -19 (63 MiB in 90 s), in
// less time than rpmbuild's zstd -3 (78 MiB in 2.5 s) or close to it.
var presets = map[string]rpmfile.Compressor{
	// small: zstd "better" (about level 7) over a 32 MiB window, one
	// frame: 28 MiB in about 3 s, 91 MB of memory.
	"small": {Level: zstd.SpeedBetterCompression, Window: 32 << 20, Segments: 1, Workers: 1, PayloadFlags: "7"},
	// fast: the same cut in two frames compressed at once; each frame
	// starts without the other's window, so it is a little larger:
	// 30 MiB in about 2 s, 161 MB.
	"fast": {Level: zstd.SpeedBetterCompression, Window: 32 << 20, Segments: 2, Workers: 2, PayloadFlags: "7"},
	// smallest: zstd "best" (about level 11) over the same window:
	// 25 MiB in about 13 s, 122 MB.
	"smallest": {Level: zstd.SpeedBestCompression, Window: 32 << 20, Segments: 1, Workers: 1, PayloadFlags: "11"},
}

// Compressions lists the accepted --compression values.
//
// nfpm's own compression strings (gzip, zstd:N, xz, lzma) were accepted
// once, and handed to nfpm's packager; they are refused now: that packager
// cannot write what a complete package carries (context-qualified
// requirements such as Requires(post): /bin/sh, rpmlib() features, file
// triggers), so every package build writes goes through rpmfile.
func Compressions() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// compression is a parsed --compression value: a preset written by
// rpmfile.
type compression struct {
	name   string
	preset *rpmfile.Compressor
}

func parseCompression(s string) (compression, error) {
	if s == "" {
		s = DefaultCompression
	}
	if p, ok := presets[s]; ok {
		return compression{name: s, preset: &p}, nil
	}
	algo, _, _ := strings.Cut(s, ":")
	why := "unknown compression"
	switch algo {
	case "gzip", "zstd", "xz", "lzma":
		why = "nfpm's compression strings are no longer accepted: nfpm's packager cannot write Requires(post) or file triggers"
	}
	return compression{}, fmt.Errorf("compression %q: %s (known: %s)", s, why, strings.Join(Compressions(), ", "))
}
