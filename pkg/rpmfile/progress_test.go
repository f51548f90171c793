package rpmfile

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"github.com/goreleaser/nfpm/v2/files"
	"github.com/klauspost/compress/zstd"
)

// TestProgress checks that Options.Progress counts every byte of the
// regular files once, whether one encoder or several write the payload,
// and that the package is the same with it as without.
func TestProgress(t *testing.T) {
	for _, c := range []Compressor{
		fast,
		{Level: zstd.SpeedFastest, Segments: 3, Workers: 3},
	} {
		info := fixture(t)
		var total int64
		for _, ct := range info.Contents {
			switch ct.Type {
			case "", files.TypeFile, files.TypeConfigNoReplace, files.TypeRPMDoc, files.TypeRPMLicense:
				if st, err := os.Stat(ct.Source); err == nil {
					total += st.Size()
				}
			}
		}
		var mu sync.Mutex
		var calls int
		var last, gotTotal int64
		progress := func(done, all int64) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if done > all {
				t.Errorf("done %d is more than the total %d", done, all)
			}
			last, gotTotal = max(last, done), all
		}
		var with, without bytes.Buffer
		if err := Write(&with, fixture(t), Options{Compressor: c, TempDir: t.TempDir(), Progress: progress}); err != nil {
			t.Fatal(err)
		}
		if err := Write(&without, fixture(t), Options{Compressor: c, TempDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if gotTotal != total || last != total {
			t.Errorf("segments %d: total %d, last done %d; want both %d, the files' bytes", c.Segments, gotTotal, last, total)
		}
		if calls < 2 {
			t.Errorf("segments %d: %d calls, want one a chunk", c.Segments, calls)
		}
		if !bytes.Equal(with.Bytes(), without.Bytes()) {
			t.Errorf("segments %d: the package differs with a progress function", c.Segments)
		}
	}
}
