package rpmfile

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	nfpmrpm "github.com/goreleaser/nfpm/v2/rpm"
	"github.com/klauspost/compress/zstd"
	rpmutils "github.com/sassoftware/go-rpmutils"
)

// fixture writes a small tree of sources and returns a package definition
// with one of each kind of content nfpm has for rpm.
func fixture(t *testing.T) *nfpm.Info {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	script := write("post.sh", []byte("echo post \"$1\"\n"), 0o644)
	changelog := write("changelog.yml", []byte(`- semver: 1.0-2
  date: 2024-05-01T12:00:00Z
  packager: Someone <someone@example.com>
  changes:
    - note: "second change"
    - note: "a change\n\n  with more to say"
- semver: 0.9-1
  date: 2024-01-01T12:00:00Z
  packager: Someone <someone@example.com>
  changes:
    - note: first
`), 0o644)
	info := &nfpm.Info{
		Name:        "fixture",
		Arch:        "amd64",
		Version:     "1.0",
		Release:     "2",
		Description: "a fixture\nwith two lines",
		License:     "MIT",
		Homepage:    "https://example.com",
		Changelog:   changelog,
		Maintainer:  "Someone <someone@example.com>",
		MTime:       time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Overridables: nfpm.Overridables{
			Depends:   []string{"bash", "coreutils >= 8.0"},
			Provides:  []string{"fixture-api = 3"},
			Conflicts: []string{"old-fixture < 1.0"},
			Replaces:  []string{"older-fixture"},
			Contents: files.Contents{
				{Source: write("tool", []byte("#!/bin/sh\necho tool\n"), 0o755), Destination: "/usr/bin/tool", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: write("big.bin", big, 0o644), Destination: "/usr/share/fixture/big.bin", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: write("empty", nil, 0o644), Destination: "/usr/share/fixture/empty", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: write("odd", []byte("abc"), 0o644), Destination: "/usr/share/fixture/odd", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: write("fixture.conf", []byte("key=value\n"), 0o644), Destination: "/etc/fixture.conf", Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o640, Group: "adm"}},
				{Source: write("README", []byte("read me\n"), 0o644), Destination: "/usr/share/doc/fixture/README", Type: files.TypeRPMDoc, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: write("LICENSE", []byte("license\n"), 0o644), Destination: "/usr/share/licenses/fixture/LICENSE", Type: files.TypeRPMLicense, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: "tool", Destination: "/usr/bin/tool-alias", Type: files.TypeSymlink},
				{Destination: "/var/lib/fixture", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
				{Destination: "/var/log/fixture.log", Type: files.TypeRPMGhost},
			},
			Scripts: nfpm.Scripts{PostInstall: script},
		},
	}
	info.RPM.BuildHost = "fixture-host"
	info.RPM.Summary = "the fixture"
	return info
}

// fast is a quick compressor for tests.
var fast = Compressor{Level: zstd.SpeedFastest, Segments: 1, Workers: 1}

func writeTo(t *testing.T, info *nfpm.Info, c Compressor) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), FileName(info))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, info, Options{Compressor: c, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeNFPM(t *testing.T, info *nfpm.Info) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nfpm.rpm")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info.RPM.Compression = "zstd:fastest"
	if err := nfpmrpm.DefaultRPM.Package(info, f); err != nil {
		t.Fatal(err)
	}
	return p
}

type readFile struct {
	info rpmutils.FileInfo
	data []byte
}

// read verifies the package with go-rpmutils and returns its header and
// the content of every file in the payload, in payload order.
func read(t *testing.T, p string) (*rpmutils.RpmHeader, []string, map[string]readFile) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := rpmutils.Verify(f, nil); err != nil {
		t.Fatalf("verifying %s: %v", p, err)
	}
	f.Seek(0, io.SeekStart)
	pkg, err := rpmutils.ReadRpm(f)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pkg.PayloadReaderExtended()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	out := map[string]readFile{}
	for {
		fi, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading payload of %s: %v (keep %s)", p, err, os.Getenv("KEEP"))
		}
		data, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, fi.Name())
		out[fi.Name()] = readFile{fi, data}
	}
	return pkg.Header, order, out
}

func TestWriteMatchesNFPM(t *testing.T) {
	ours := writeTo(t, fixture(t), fast)
	theirs := writeNFPM(t, fixture(t))
	if FileName(fixture(t)) != "fixture-1.0-2.x86_64.rpm" {
		t.Errorf("file name %s", FileName(fixture(t)))
	}

	ho, order, fo := read(t, ours)
	hn, _, fn := read(t, theirs)
	if !slices.IsSorted(order) {
		t.Errorf("payload order %v is not sorted", order)
	}
	for name, n := range fn {
		o, ok := fo[name]
		if !ok {
			t.Errorf("%s missing from the stream writer's payload", name)
			continue
		}
		a, b := n.info, o.info
		wantMode := a.Mode()
		if name == "/usr/bin/tool-alias" {
			wantMode |= 0o777 // rpmpack's links have no permission bits
		}
		if wantMode != b.Mode() || a.Size() != b.Size() || a.UserName() != b.UserName() || a.GroupName() != b.GroupName() ||
			a.Flags() != b.Flags() || a.Mtime() != b.Mtime() || a.Digest() != b.Digest() || a.Linkname() != b.Linkname() {
			t.Errorf("%s: nfpm %o %d %s:%s flags %d mtime %d %s -> %q; stream %o %d %s:%s flags %d mtime %d %s -> %q", name,
				a.Mode(), a.Size(), a.UserName(), a.GroupName(), a.Flags(), a.Mtime(), a.Digest(), a.Linkname(),
				b.Mode(), b.Size(), b.UserName(), b.GroupName(), b.Flags(), b.Mtime(), b.Digest(), b.Linkname())
		}
		if !bytes.Equal(n.data, o.data) {
			t.Errorf("%s: content differs", name)
		}
	}
	if len(fo) != len(fn) {
		t.Errorf("%d entries in the stream payload, %d in nfpm's", len(fo), len(fn))
	}
	// The ghost is in the header only.
	files, _ := ho.GetFiles()
	var ghost bool
	for _, f := range files {
		if f.Name() == "/var/log/fixture.log" {
			ghost = f.Flags()&(1<<6) != 0
		}
	}
	if !ghost {
		t.Error("no ghost /var/log/fixture.log in the header")
	}

	for _, tag := range []int{
		rpmutils.NAME, rpmutils.VERSION, rpmutils.RELEASE, rpmutils.ARCH, rpmutils.OS, rpmutils.SUMMARY,
		rpmutils.DESCRIPTION, rpmutils.LICENSE, rpmutils.URL, rpmutils.PACKAGER, rpmutils.BUILDHOST, rpmutils.SOURCERPM,
		rpmutils.POSTIN, rpmutils.POSTINPROG,
		// Dependencies are rpmbuild's, not nfpm's (TestMatchesRPMBuild):
		// nfpm writes no interpreter, rpmlib(), ISA or macro ones.
		rpmutils.CONFLICTNAME, rpmutils.CONFLICTVERSION, rpmutils.OBSOLETENAME,
		rpmutils.DIRNAMES, rpmutils.BASENAMES, rpmutils.FILEDIGESTS, rpmutils.FILELINKTOS,
		rpmutils.FILEUSERNAME, rpmutils.FILEGROUPNAME, rpmutils.PAYLOADCOMPRESSOR, rpmutils.PAYLOADFORMAT,
		rpmutils.CHANGELOGNAME, rpmutils.CHANGELOGTEXT,
	} {
		a, _ := hn.GetStrings(tag)
		b, _ := ho.GetStrings(tag)
		if !slices.Equal(a, b) {
			t.Errorf("tag %d: nfpm %q, stream %q", tag, a, b)
		}
	}
	for _, tag := range []int{
		rpmutils.BUILDTIME, rpmutils.SIZE, rpmutils.FILESIZES, rpmutils.FILEMTIMES,
		rpmutils.FILEFLAGS, rpmutils.DIRINDEXES, rpmutils.FILEINODES,
		rpmutils.CONFLICTFLAGS, rpmutils.OBSOLETEFLAGS, rpmutils.CHANGELOGTIME,
	} {
		a, _ := hn.GetInts(tag)
		b, _ := ho.GetInts(tag)
		if !slices.Equal(a, b) {
			t.Errorf("tag %d: nfpm %v, stream %v", tag, a, b)
		}
	}
}

func TestWriteIsValidForRPM(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Fatal("rpm is missing: apt-get install -y rpm")
	}
	p := writeTo(t, fixture(t), fast)
	out, err := exec.Command("rpm", "-K", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "digests OK") {
		t.Fatalf("rpm -K: %v\n%s", err, out)
	}
	out, err = exec.Command("rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]", p).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp: %v\n%s", err, out)
	}
	for _, want := range []string{
		"-rw-r----- root:adm cn /etc/fixture.conf",
		"-rwxr-xr-x root:root  /usr/bin/tool",
		"lrwxrwxrwx root:root  /usr/bin/tool-alias",
		"drwxr-x--- root:root  /var/lib/fixture",
		"-rw-r--r-- root:root g /var/log/fixture.log",
		"-rw-r--r-- root:root d /usr/share/doc/fixture/README",
		"-rw-r--r-- root:root l /usr/share/licenses/fixture/LICENSE",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("rpm -qp lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command("rpm", "-qp", "--changelog", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "* Wed May 01 2024 Someone <someone@example.com> - 1.0-2\n- second change\n- a change\n  with more to say\n") {
		t.Errorf("rpm -qp --changelog: %v\n%s", err, out)
	}
	out, err = exec.Command("rpm", "-qp", "--requires", "--provides", "--conflicts", "--obsoletes", p).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp: %v\n%s", err, out)
	}
	for _, want := range []string{"bash", "coreutils >= 8.0", "fixture-api = 3", "fixture = 1.0-2", "old-fixture < 1.0", "older-fixture"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("rpm -qp lacks %q:\n%s", want, out)
		}
	}
}

// noise adds files of incompressible bytes, so that each segment's frame
// is larger than minLastFrame.
func noise(t *testing.T, info *nfpm.Info, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for i := range n {
		data := make([]byte, 3<<19)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info.Contents = append(info.Contents, &files.Content{Source: p, Destination: fmt.Sprintf("/usr/share/fixture/noise-%d", i), FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
}

func frames(t *testing.T, p string) int {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// TestSegments checks that cutting the payload into frames changes the
// encoding only: the archive inside, and so every header tag but the
// payload digest, is the same.
func TestSegments(t *testing.T) {
	mk := func() *nfpm.Info {
		info := fixture(t)
		noise(t, info, 3)
		return info
	}
	one := writeTo(t, mk(), fast)
	c := fast
	c.Segments, c.Workers = 3, 2
	three := writeTo(t, mk(), c)
	h1, o1, f1 := read(t, one)
	h3, o3, f3 := read(t, three)
	if !slices.Equal(o1, o3) {
		t.Errorf("payload order %v vs %v", o1, o3)
	}
	for name, a := range f1 {
		if !bytes.Equal(a.data, f3[name].data) {
			t.Errorf("%s differs", name)
		}
	}
	s1, _ := h1.GetInts(rpmutils.SIG_PAYLOADSIZE)
	s3, _ := h3.GetInts(rpmutils.SIG_PAYLOADSIZE)
	if !slices.Equal(s1, s3) || len(s1) != 1 || s1[0] < 5<<20 {
		t.Errorf("archive sizes %v and %v", s1, s3)
	}
	if n := frames(t, one); n != 1 {
		t.Errorf("%d zstd frames in one segment", n)
	}
	if n := frames(t, three); n != 3 {
		t.Errorf("%d zstd frames, want 3", n)
	}
	// rpm's own decompressor reads all frames.
	if _, err := exec.LookPath("rpm2cpio"); err != nil {
		t.Fatal("rpm2cpio is missing: apt-get install -y rpm")
	}
	out, err := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -it --quiet`, "sh", three).CombinedOutput()
	if err != nil || strings.Count(string(out), "\n") != len(o3) {
		t.Errorf("rpm2cpio | cpio -t: %v\n%s", err, out)
	}
}

// TestSmallLastFrameMerged is the case DataDog/zstd's reader (go-rpmutils
// with cgo) cannot read: a small last frame after a frame boundary. The
// writer merges it into the frame before, so read succeeds.
func TestSmallLastFrameMerged(t *testing.T) {
	c := fast
	c.Segments, c.Workers = 3, 3
	p := writeTo(t, fixture(t), c)
	if n := frames(t, p); n != 1 {
		t.Errorf("%d frames; the small ones should have been merged", n)
	}
	read(t, p)

	info := fixture(t)
	noise(t, info, 1)
	c.Segments = 2
	p = writeTo(t, info, c)
	if n := frames(t, p); n != 1 {
		t.Errorf("%d frames; the small last one should have been merged", n)
	}
	read(t, p)
}

func TestReproducible(t *testing.T) {
	a, err := os.ReadFile(writeTo(t, fixture(t), fast))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeTo(t, fixture(t), fast))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same package differ")
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(*nfpm.Info)
		c      Compressor
		want   string
	}{
		{"missing source", func(i *nfpm.Info) {
			i.Contents = append(i.Contents, &files.Content{Source: "/nonexistent/file", Destination: "/usr/bin/gone", FileInfo: &files.ContentFileInfo{Mode: 0o755}})
		}, fast, "/nonexistent/file"},
		{"no build host", func(i *nfpm.Info) { i.RPM.BuildHost = "" }, fast, "build host"},
		{"bad changelog", func(i *nfpm.Info) { i.Changelog = i.Scripts.PostInstall }, fast, "reading changelog"},
		{"window too large", func(*nfpm.Info) {}, Compressor{Level: zstd.SpeedFastest, Window: 1 << 28}, "more than rpm can decompress"},
		{"bad dependency", func(i *nfpm.Info) { i.Depends = []string{"foo >="} }, fast, `"foo >="`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := fixture(t)
			c.change(info)
			var b bytes.Buffer
			err := Write(&b, info, Options{Compressor: c.c, TempDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestParseRelation(t *testing.T) {
	cases := []struct {
		in   string
		want relation
		err  bool
	}{
		{"bash", relation{name: "bash"}, false},
		{"/bin/sh", relation{name: "/bin/sh"}, false},
		{"foo >= 1.2", relation{"foo", "1.2", senseGreater | senseEqual}, false},
		{"foo>=1.2-3", relation{"foo", "1.2-3", senseGreater | senseEqual}, false},
		{"foo = 2:1.0", relation{"foo", "2:1.0", senseEqual}, false},
		{"foo < 1", relation{"foo", "1", senseLess}, false},
		{"foo <= 1", relation{"foo", "1", senseLess | senseEqual}, false},
		{"foo > 1", relation{"foo", "1", senseGreater}, false},
		{"(foo if bar)", relation{name: "(foo if bar)"}, false},
		{"", relation{}, true},
		{"foo >=", relation{}, true},
		{"foo => 1", relation{}, true},
		{"foo >= 1 2", relation{}, true},
		{">= 1", relation{}, true},
	}
	for _, c := range cases {
		got, err := parseRelation(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseRelation(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestSplit(t *testing.T) {
	mk := func(sizes ...uint32) []*file {
		var fs []*file
		for _, s := range sizes {
			fs = append(fs, &file{size: s})
		}
		return fs
	}
	lens := func(runs [][]*file) []int {
		var l []int
		for _, r := range runs {
			l = append(l, len(r))
		}
		return l
	}
	cases := []struct {
		sizes []uint32
		n     int
		want  []int
	}{
		{[]uint32{10, 10, 10, 10}, 2, []int{2, 2}},
		{[]uint32{10, 10, 10, 10}, 1, []int{4}},
		{[]uint32{10, 10, 10, 10}, 4, []int{1, 1, 1, 1}},
		{[]uint32{10, 10, 10, 10}, 8, []int{1, 1, 1, 1}},
		{[]uint32{100, 1, 1, 1}, 2, []int{1, 3}},
		{[]uint32{0, 0, 0}, 2, []int{3}},
		{[]uint32{4096, 5, 5, 4096, 5}, 2, []int{3, 2}},
		{nil, 3, []int{0}},
	}
	for _, c := range cases {
		if got := lens(split(mk(c.sizes...), c.n)); !slices.Equal(got, c.want) {
			t.Errorf("split(%v, %d) = %v, want %v", c.sizes, c.n, got, c.want)
		}
	}
}

func TestCpioAlignment(t *testing.T) {
	var b bytes.Buffer
	cw := &cpioWriter{w: &b}
	for _, name := range []string{"./a", "./bb", "./ccc", "./dddd"} {
		if err := cw.header(name, 1, 0o100644, 1, 0, 3); err != nil {
			t.Fatal(err)
		}
		if b.Len()%4 != 0 {
			t.Errorf("data of %s starts at %d", name, b.Len())
		}
		cw.write([]byte("xyz"))
		cw.pad()
	}
	cw.close()
	if b.Len()%4 != 0 || !bytes.Contains(b.Bytes(), []byte("TRAILER!!!\x00")) || int64(b.Len()) != cw.n {
		t.Errorf("archive of %d bytes, counted %d", b.Len(), cw.n)
	}
}
