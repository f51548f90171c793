package assemble

import (
	"fmt"
	"sort"
	"strconv"
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

// Compressions lists the accepted --compression values: the presets, then
// the forms of nfpm's own strings.
func Compressions() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return append(names, "gzip[:1-9]", "zstd[:fastest|default|better|best|1-22]", "xz", "lzma")
}

// compression is a parsed --compression value: either a preset written by
// rpmfile or an nfpm string handed to nfpm's packager as it is.
type compression struct {
	name   string
	preset *rpmfile.Compressor
	nfpm   string
}

func parseCompression(s string) (compression, error) {
	if s == "" {
		s = DefaultCompression
	}
	if p, ok := presets[s]; ok {
		return compression{name: s, preset: &p}, nil
	}
	algo, level, hasLevel := strings.Cut(s, ":")
	bad := func(why string) (compression, error) {
		return compression{}, fmt.Errorf("compression %q: %s (known: %s)", s, why, strings.Join(Compressions(), ", "))
	}
	switch algo {
	case "gzip":
		if hasLevel {
			n, err := strconv.Atoi(level)
			if err != nil || n < 1 || n > 9 {
				return bad("the gzip level is 1 to 9")
			}
		}
	case "zstd":
		if hasLevel {
			if n, err := strconv.Atoi(level); err == nil {
				if n < 1 || n > 22 {
					return bad("the zstd level is 1 to 22")
				}
			} else if ok, _ := zstd.EncoderLevelFromString(level); !ok {
				return bad("the zstd level is fastest, default, better, best or a number")
			}
		}
	case "xz", "lzma":
		if hasLevel {
			return bad(algo + " takes no level in nfpm")
		}
	default:
		return bad("unknown compression")
	}
	return compression{name: s, nfpm: s}, nil
}
