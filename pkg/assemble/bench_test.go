package assemble

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	nfpmrpm "github.com/goreleaser/nfpm/v2/rpm"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmfile"
)

// countingWriter discards what it is given and counts it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// benchInfo is a package of every /usr/bin/qemu-*-static: the full set
// issue 6 measures (35 interpreters, 370 MiB on Debian 12).
func benchInfo(b *testing.B) (*nfpm.Info, int64) {
	b.Helper()
	paths, _ := filepath.Glob("/usr/bin/qemu-*-static")
	if len(paths) == 0 {
		b.Fatal("no /usr/bin/qemu-*-static: install with `apt-get install -y qemu-user-static`")
	}
	sort.Strings(paths)
	info := &nfpm.Info{Name: "bench", Arch: "x86_64", Version: "1", MTime: time.Unix(1700000000, 0)}
	info.RPM.BuildHost = "bench"
	var raw int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		raw += st.Size()
		info.Contents = append(info.Contents, &files.Content{Source: p, Destination: p, FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}
	return info, raw
}

// BenchmarkCompression writes the full interpreter set with each preset,
// and with nfpm's own packager at its default zstd for reference. It
// reports the package size in MiB; -benchmem does not see the encoder's
// buffers, so measure peak memory on the command (see docs/benchmarks.md).
func BenchmarkCompression(b *testing.B) {
	names := []string{"fast", "small", "smallest", "zstd"}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			var c compression
			if name != "zstd" {
				var err error
				if c, err = parseCompression(name); err != nil {
					b.Fatal(err)
				}
			}
			var size int64
			_, raw := benchInfo(b)
			b.SetBytes(raw)
			for b.Loop() {
				info, _ := benchInfo(b)
				w := &countingWriter{}
				var err error
				if c.preset != nil {
					err = rpmfile.Write(w, info, rpmfile.Options{Compressor: *c.preset, TempDir: b.TempDir()})
				} else {
					// nfpm's own packager, for reference only.
					info.RPM.Compression = "zstd"
					err = nfpmrpm.DefaultRPM.Package(info, w)
				}
				if err != nil {
					b.Fatal(err)
				}
				size = w.n
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB")
		})
	}
}
