package inspect_test

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ulikunitz/xz/lzma"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// The hostile packages of issue 16 point 4 are generated here, each a
// real package built with nfpm whose payload is then replaced, with the
// digests and sizes in both headers made to match, so that they get past
// every check and reach the payload reader. Each is inspected in a child
// process whose peak RSS is measured.

const envChild = "INSPECT_CHILD_FILE"

// maxRSS is the target of issue 16: peak memory under 64 MiB for any
// input under 10 MiB.
const maxRSS = 64 << 20

// TestMain lets the test binary inspect one file as a child process:
// with INSPECT_CHILD_FILE set it prints the outcome and exits.
func TestMain(m *testing.M) {
	if p := os.Getenv(envChild); p != "" {
		// A hard ceiling, so that a regression fails here with "out of
		// memory" rather than taking gigabytes from the machine.
		lim := unix.Rlimit{Cur: 1 << 30, Max: 1 << 30}
		if err := unix.Setrlimit(unix.RLIMIT_DATA, &lim); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(3)
		}
		_, err := inspect.File(p, inspect.Options{})
		// VmHWM is the peak RSS of this program's own memory: the
		// rusage of a child started by fork and exec would also count
		// the parent's pages from before the exec.
		status, serr := os.ReadFile("/proc/self/status")
		if serr != nil {
			fmt.Println("reading /proc/self/status:", serr)
			os.Exit(3)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Println(l)
			}
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ok")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inspectChild inspects p in a child process and returns what it
// printed, its peak RSS in bytes and how long it took.
func inspectChild(t *testing.T, p string) (string, int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChild+"="+p)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running the child: %v", err)
	}
	text := strings.TrimSpace(string(out))
	first, rest, _ := strings.Cut(text, "\n")
	var kb int64
	if _, err := fmt.Sscanf(first, "VmHWM: %d kB", &kb); err != nil {
		t.Fatalf("the child printed no VmHWM line: %q", text)
	}
	return rest, kb << 10, took
}

// tagData returns where the data of tag start in the header at h (a
// signature header or the header), or -1.
func tagData(h []byte, tag uint32) int {
	count := int(binary.BigEndian.Uint32(h[8:]))
	store := 16 + 16*count
	for i := range count {
		e := h[16+16*i:]
		if binary.BigEndian.Uint32(e) == tag {
			return store + int(binary.BigEndian.Uint32(e[8:]))
		}
	}
	return -1
}

// repack replaces the payload of the package base with payload, and
// its compressor name with compressor (of the same length), then makes
// the payload digest, the header digests and the sizes match.
func repack(t *testing.T, base []byte, compressor string, payload []byte) []byte {
	t.Helper()
	sigAt, hdrAt, payAt := offsets(t, base)
	hdr := bytes.Clone(base[hdrAt:payAt])
	set := func(h []byte, tag uint32, val []byte, want int) {
		t.Helper()
		at := tagData(h, tag)
		if at < 0 {
			if want > 0 {
				t.Fatalf("no tag %d in the package", tag)
			}
			return
		}
		if want > 0 && !bytes.Equal(h[at:at+len(val)], h[at:at+len(val)]) {
			t.Fatal("unreachable")
		}
		copy(h[at:], val)
	}
	if compressor != "" {
		at := tagData(hdr, 1125) // PAYLOADCOMPRESSOR
		if at < 0 || len(compressor) != bytes.IndexByte(hdr[at:], 0) {
			t.Fatalf("cannot put %q in place of the compressor name", compressor)
		}
		copy(hdr[at:], compressor)
	}
	sum := sha256.Sum256(payload)
	set(hdr, 5092, []byte(hex.EncodeToString(sum[:])), 1) // PAYLOADDIGEST
	sig := bytes.Clone(base[sigAt:hdrAt])
	hs := sha256.Sum256(hdr)
	set(sig, 273, []byte(hex.EncodeToString(hs[:])), 1) // SHA256
	h1 := sha1.Sum(hdr)
	set(sig, 269, []byte(hex.EncodeToString(h1[:])), 0) // SHA1
	m := md5.New()
	m.Write(hdr)
	m.Write(payload)
	set(sig, 1004, m.Sum(nil), 0) // MD5
	size := make([]byte, 8)
	binary.BigEndian.PutUint32(size, uint32(len(hdr)+len(payload)))
	set(sig, 1000, size[:4], 0) // SIZE
	binary.BigEndian.PutUint64(size, uint64(len(hdr)+len(payload)))
	set(sig, 270, size, 0) // LONGSIGSIZE
	out := append(bytes.Clone(base[:sigAt]), sig...)
	out = append(out, hdr...)
	return append(out, payload...)
}

// newc is one cpio header in rpm's newc format.
func newc(name string, mode, size, nameSize uint32) []byte {
	if nameSize == 0 {
		nameSize = uint32(len(name) + 1)
	}
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameSize, 0)
	b := append([]byte(h), name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// basePackage is the package every hostile one starts from, with gzip:
// its decompressed cpio archive is returned too.
func basePackage(t *testing.T) (rpm, cpio []byte) {
	t.Helper()
	p := sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "hostile", Version: "1", Arch: "x86_64", Compression: "gzip",
		Files: []sandbox.File{
			{Dst: "/usr/lib/binfmt.d/a.conf", Content: []byte(":a:E::a::/bin/true:\n")},
			{Dst: "/usr/share/hostile", Type: "dir"},
		},
	})
	rpm, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, _, payAt := offsets(t, rpm)
	zr, err := gzip.NewReader(bytes.NewReader(rpm[payAt:]))
	if err != nil {
		t.Fatal(err)
	}
	cpio, err = io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return rpm, cpio
}

// xzWithDict compresses b with the real xz, then sets the LZMA2
// dictionary property of its one block to prop (dictionary size
// (2|prop&1) << (prop/2+11)), with the block header's CRC32 redone.
func xzWithDict(t *testing.T, b []byte, prop byte) []byte {
	t.Helper()
	sandbox.Require(t, "xz", "xz-utils")
	cmd := exec.Command("xz", "-T1", "--lzma2=dict=4KiB", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz: %v", err)
	}
	// Stream header (12 bytes), then the block header: its size/4-1,
	// flags, optional sizes (varints), then the filter: id 0x21, one
	// property byte.
	bh := out[12:]
	size := (int(bh[0]) + 1) * 4
	i := 2
	varint := func() {
		for bh[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if bh[1]&0x40 != 0 {
		varint()
	}
	if bh[1]&0x80 != 0 {
		varint()
	}
	if bh[i] != 0x21 || bh[i+1] != 1 {
		t.Fatalf("xz block header %x: no LZMA2 filter where expected", bh[:size])
	}
	bh[i+2] = prop
	binary.LittleEndian.PutUint32(bh[size-4:], crc32.ChecksumIEEE(bh[:size-4]))
	return out
}

// zstdWithWindow is one zstd frame of raw blocks holding b, whose header
// asks for a window of 1 << windowLog bytes.
func zstdWithWindow(b []byte, windowLog int) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((windowLog - 10) << 3)}
	for len(b) > 0 {
		n := min(len(b), 128<<10)
		last := 0
		if n == len(b) {
			last = 1
		}
		v := uint32(last | n<<3) // raw block
		out = append(out, byte(v), byte(v>>8), byte(v>>16))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

func lzmaWithDict(t *testing.T, b []byte, dict uint32) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := lzma.WriterConfig{DictCap: 4096}.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	data := out.Bytes()
	binary.LittleEndian.PutUint32(data[1:5], dict)
	return data
}

func TestHostilePayloads(t *testing.T) {
	base, cpio := basePackage(t)
	trailer := newc("TRAILER!!!", 0, 0, 0)
	filler := make([]byte, 128<<10)

	// 60 binfmt.d files of just under 1 MiB each, all alike: lines of
	// one entry.
	line := ":e:E::x::/usr/bin/none:\n"
	conf := []byte(strings.Repeat(line, (1<<20-1)/len(line)))
	var many []sandbox.File
	for i := range 60 {
		many = append(many, sandbox.File{Dst: fmt.Sprintf("/usr/lib/binfmt.d/c%02d.conf", i), Content: conf})
	}
	manyConfs, err := os.ReadFile(sandbox.BuildRPM(t, sandbox.PackageSpec{Name: "many", Version: "1", Arch: "x86_64", Compression: "zstd", Files: many}))
	if err != nil {
		t.Fatal(err)
	}
	// The same with lines that do not parse, each an error.
	bad := []byte(strings.Repeat(":b:X::x::/usr/bin/none:\n", (1<<20-1)/len(line)))
	for i := range many {
		many[i].Content = bad
	}
	badConfs, err := os.ReadFile(sandbox.BuildRPM(t, sandbox.PackageSpec{Name: "bad", Version: "1", Arch: "x86_64", Compression: "zstd", Files: many}))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		rpm  []byte
		want string // in the child's error; "ok" for a clean run
	}{
		{"the package itself", base, "ok"},
		{"a cpio directory entry of about 4 GiB",
			repack(t, base, "", gz(t, concat(newc("/usr/share/hostile", 0o40755, 0xfffffff0, 0), filler, trailer))),
			"/usr/share/hostile has 4294967280 bytes of data in the payload, the header says 0"},
		{"a cpio name size of about 4 GiB",
			repack(t, base, "", gz(t, concat(newc("/usr/share/hostile", 0o40755, 0, 0xfffffff0), filler))),
			"claims a name of 4294967280 bytes (at most 4096)"},
		{"a regular file bigger in the payload than in the header",
			repack(t, base, "", gz(t, concat(newc("/usr/lib/binfmt.d/a.conf", 0o100644, 0x7ffffff0, 0), filler))),
			"a.conf has 2147483632 bytes of data in the payload, the header says 20"},
		{"a file in the payload twice",
			repack(t, base, "", gz(t, concat(newc("/usr/share/hostile", 0o40755, 0, 0), newc("/usr/share/hostile", 0o40755, 0, 0), trailer))),
			"/usr/share/hostile is in the payload twice"},
		{"an lzma header asking for a 2 GiB dictionary",
			repack(t, base, "lzma", lzmaWithDict(t, concat(cpio, filler), 0x7fff0000)),
			"the lzma payload asks for a dictionary of 2147418112 bytes; at most 33554432"},
		{"an xz block asking for a 2 GiB dictionary",
			repack(t, base, "xz\x00\x00", nil), ""},
		{"a zstd frame asking for a 2 GiB window",
			repack(t, base, "zstd", zstdWithWindow(cpio, 31)),
			"the zstd payload asks for a window over 33554432 bytes"},
		{"60 identical binfmt.d files of 1 MiB", manyConfs, "ok"},
		{"60 binfmt.d files of 1 MiB of bad lines", badConfs, "ok"},
	}
	// xz is shorter than gzip: its case is built on a base with xz.
	xzBase, err := os.ReadFile(sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "hostile", Version: "1", Arch: "x86_64", Compression: "xz",
		Files: []sandbox.File{
			{Dst: "/usr/lib/binfmt.d/a.conf", Content: []byte(":a:E::a::/bin/true:\n")},
			{Dst: "/usr/share/hostile", Type: "dir"},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	cases[6].rpm = repack(t, xzBase, "", xzWithDict(t, concat(cpio, filler), 38))
	cases[6].want = "the xz payload asks for a dictionary over 33554432 bytes"

	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.rpm) >= 10<<20 {
				t.Fatalf("the package is %d bytes; the target covers inputs under 10 MiB", len(c.rpm))
			}
			p := filepath.Join(dir, fmt.Sprintf("%d.rpm", i))
			if err := os.WriteFile(p, c.rpm, 0o644); err != nil {
				t.Fatal(err)
			}
			out, rss, took := inspectChild(t, p)
			t.Logf("%d bytes: peak RSS %.1f MiB, %v: %s", len(c.rpm), float64(rss)/(1<<20), took.Round(time.Millisecond), out)
			if !strings.Contains(out, c.want) || c.want != "ok" && strings.HasSuffix(out, "ok") {
				t.Errorf("inspect says %q, want %q", out, c.want)
			}
			if rss >= maxRSS {
				t.Errorf("peak RSS %d bytes, want under %d", rss, maxRSS)
			}
		})
	}

	// The 60 files: two are read, the rest refused by the total bound,
	// and the entries linted stop at a bound.
	rep, err := inspect.Read(bytes.NewReader(manyConfs), int64(len(manyConfs)), "many.rpm", inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := problems(rep, inspect.SeverityError)
	if n := strings.Count(errs, "not read: the package's binfmt.d files hold more than 2097152 bytes together"); n != 58 {
		t.Errorf("%d files refused by the total bound, want 58:\n%.2000s", n, errs)
	}
	if len(rep.Entries) != 4096 || !strings.Contains(errs, "more than 4096 binfmt entries in the package") {
		t.Errorf("%d entries linted, want the bound of 4096", len(rep.Entries))
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestPayloadBound: a payload that decompresses to more than the bound
// is refused once the bound is reached, not read to its end.
func TestPayloadBound(t *testing.T) {
	big := bytes.Repeat([]byte{0}, 32<<20)
	p := sandbox.BuildRPM(t, sandbox.PackageSpec{
		Name: "big", Version: "1", Arch: "x86_64", Compression: "zstd",
		Files: []sandbox.File{{Dst: "/usr/share/big/zeros", Content: big}},
	})
	if _, err := inspect.File(p, inspect.Options{}); err != nil {
		t.Fatalf("under the usual bound: %v", err)
	}
	defer inspect.SetMaxPayload(16 << 20)()
	_, err := inspect.File(p, inspect.Options{})
	if err == nil || !strings.Contains(err.Error(), "the payload decompresses to more than 16777216 bytes") {
		t.Errorf("over a bound of 16 MiB: %v", err)
	}
}
