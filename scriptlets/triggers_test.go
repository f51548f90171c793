package scriptlets

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTriggerBodies: each file trigger body is Lua that rpm's own Lua
// runs, passes the transaction's rpm ("-": binfmtctl's parent) and its step
// to binfmtctl through rpm.execute, with the *.conf files directly in a
// binfmt.d directory of rpm.next_file's list as arguments, starts nothing
// when there is nothing to do, and can never fail the transaction,
// binfmtctl present or not.
func TestTriggerBodies(t *testing.T) {
	bodies, _ := filepath.Glob("trigger-*")
	lua, _ := filepath.Glob("trigger-*.lua")
	if len(bodies) != 5 || len(lua) != 5 {
		t.Fatalf("trigger bodies %v, want the five steps, all Lua: rpm runs Lua in-process, a shell costs it a fork", bodies)
	}
	list := []string{"/usr/lib/binfmt.d", "/usr/lib/binfmt.d/a.conf", "/usr/lib/binfmt.d/sub/x.conf", "/usr/lib/binfmt.d/README", "/etc/binfmt.d/b.conf", "/usr/local/lib/binfmt.d/c.conf", "/usr/lib/binfmt.dx/d.conf"}
	confs := " /usr/lib/binfmt.d/a.conf /etc/binfmt.d/b.conf /usr/local/lib/binfmt.d/c.conf"
	for _, f := range lua {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		step := strings.TrimSuffix(strings.TrimPrefix(f, "trigger-"), ".lua")
		if !strings.Contains(string(b), `rpm.execute, "/usr/bin/binfmtctl", "trigger", "`+step+`", "-"`) {
			t.Errorf("%s does not run binfmtctl trigger %s - through rpm.execute", f, step)
		}
		if strings.Contains(string(b), "%{") {
			t.Errorf("%s uses a macro; the bodies are the same in both builds and take none", f)
		}
		wantFiles := step == "leaving" || step == "removing" || step == "guard-after"
		for _, c := range []struct {
			files   []string
			systemd bool
			want    string // binfmtctl's arguments, "" for not started
		}{
			{nil, false, ""},
			{list, false, map[bool]string{true: "trigger " + step + " -" + confs}[wantFiles]},
			{[]string{"/usr/lib/binfmt.d"}, true, map[string]string{"early": "trigger early -", "guard-before": "trigger guard-before -", "guard-after": "trigger guard-after -"}[step]},
			{list, true, map[bool]string{true: "trigger " + step + " -" + confs, false: "trigger " + step + " -"}[wantFiles]},
		} {
			// rpm's own Lua runs it, with rpm.next_file as a file
			// trigger has it, a stand-in binfmtctl that writes its
			// arguments, and /run/systemd/system there or not.
			dir := t.TempDir()
			helper, out, booted := filepath.Join(dir, "binfmtctl"), filepath.Join(dir, "args"), filepath.Join(dir, "system")
			if err := os.WriteFile(helper, []byte("#!/bin/sh\necho \"$*\" > "+out+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if c.systemd {
				if err := os.Mkdir(booted, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var q []string
			for _, p := range c.files {
				q = append(q, `"`+p+`"`)
			}
			prelude := "local list = {" + strings.Join(q, ",") + "}; local i = 0; rpm.next_file = function() i = i + 1; return list[i] end\n"
			// binfmt_misc is not mounted here (TestEarlyOncePerProcess has it).
			body := strings.NewReplacer("/usr/bin/binfmtctl", helper, "/run/systemd/system", booted, "/proc/sys/fs/binfmt_misc/status", filepath.Join(dir, "status"), "/proc/sys/fs/binfmt_misc", filepath.Join(dir, "binfmt_misc")).Replace(string(b))
			// %{lua:...} takes its body as it is: no macro expansion.
			body = prelude + body
			if o, err := exec.Command("rpm", "--eval", "%{lua:"+body+"}").CombinedOutput(); err != nil || strings.Contains(string(o), "error") {
				t.Errorf("%s does not run in rpm's Lua: %v\n%s", f, err, o)
				continue
			}
			got, err := os.ReadFile(out)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != c.want {
				t.Errorf("%s with files %q, /run/systemd/system %v: binfmtctl run with %q, want %q (\"\" for not started)", f, c.files, c.systemd, strings.TrimSpace(string(got)), c.want)
			}
		}
		// Without binfmtctl (it is being erased, or another root), the
		// body succeeds doing nothing.
		body := strings.ReplaceAll(string(b), "/usr/bin/binfmtctl", "/nonexistent/binfmtctl")
		body = "rpm.next_file = function() return nil end\n" + body
		if o, err := exec.Command("rpm", "--eval", "%{lua:"+body+"}").CombinedOutput(); err != nil || strings.Contains(string(o), "error") {
			t.Errorf("%s fails without binfmtctl: %v\n%s", f, err, o)
		}
	}
}

// TestEarlyOncePerProcess: where systemd does not run, the early step
// matters only for the binfmt.d files on disk in a transaction that
// installs the helper (one installed before it runs the leaving step for
// every file the transaction removes), so its body starts binfmtctl once
// per rpm process (one Lua state), from the first run that is passed
// /usr/bin/binfmtctl or any later one, and only where binfmt_misc is
// mounted; where systemd runs, in every run passed a binfmt.d file (the
// table may change between packages).
func TestEarlyOncePerProcess(t *testing.T) {
	b, err := os.ReadFile("trigger-early.lua")
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile("trigger-guard-after.lua")
	if err != nil {
		t.Fatal(err)
	}
	oldWay := []string{"/usr/lib/binfmt.d/oldway.conf"}
	helper := []string{"/usr/bin/binfmtctl"}
	ours := []string{"/usr/bin/binfmtctl", "/usr/lib/binfmt.d/qemu-aarch64-static.conf"}
	for _, c := range []struct {
		systemd, binfmt bool
		runs            [][]string // the files of each %filetriggerin run in one rpm process
		want            int
	}{
		{false, true, [][]string{oldWay, oldWay}, 0},
		{false, true, [][]string{ours, oldWay}, 1},
		{false, true, [][]string{oldWay, helper, oldWay}, 1},
		{false, false, [][]string{ours, oldWay}, 0},
		{true, false, [][]string{oldWay, oldWay}, 2},
		{true, true, [][]string{ours, oldWay}, 2},
		{true, true, [][]string{helper, oldWay}, 1},
		// nil: guard-after, the end of a transaction; the process (a
		// daemon) then runs the next one.
		{false, true, [][]string{ours, nil, ours}, 2},
		{false, true, [][]string{ours, oldWay, nil, oldWay}, 1},
	} {
		dir := t.TempDir()
		bin, out := filepath.Join(dir, "binfmtctl"), filepath.Join(dir, "runs")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"$*\" >> "+out+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		booted, status := filepath.Join(dir, "system"), filepath.Join(dir, "status")
		if c.systemd {
			if err := os.Mkdir(booted, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if c.binfmt {
			if err := os.WriteFile(status, []byte("enabled\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The body tests "/usr/bin/binfmtctl" among the files by its
		// name: only the path it runs is replaced.
		r := strings.NewReplacer(`posix.access("/usr/bin/binfmtctl"`, `posix.access("`+bin+`"`, `rpm.execute, "/usr/bin/binfmtctl"`, `rpm.execute, "`+bin+`"`, "/run/systemd/system", booted, "/proc/sys/fs/binfmt_misc/status", status, "/proc/sys/fs/binfmt_misc", filepath.Join(dir, "binfmt_misc"))
		body, end := r.Replace(string(b)), r.Replace(string(after))
		// Several packages' %filetriggerin in one rpm process.
		var script strings.Builder
		for _, files := range c.runs {
			var q []string
			for _, p := range files {
				q = append(q, `"`+p+`"`)
			}
			script.WriteString("do local list = {" + strings.Join(q, ",") + "}; local i = 0; rpm.next_file = function() i = i + 1; return list[i] end end\n")
			if files == nil {
				script.WriteString("do\n" + end + "\nend\n")
				continue
			}
			script.WriteString("do\n" + body + "\nend\n")
		}
		if o, err := exec.Command("rpm", "--eval", "%{lua:"+script.String()+"}").CombinedOutput(); err != nil || strings.Contains(string(o), "error") {
			t.Fatalf("trigger-early.lua does not run in rpm's Lua: %v\n%s", err, o)
		}
		got, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if n := strings.Count(string(got), "trigger early -\n"); n != c.want {
			t.Errorf("systemd %v, binfmt_misc %v, runs %q: binfmtctl started %d times (%q), want %d", c.systemd, c.binfmt, c.runs, n, got, c.want)
		}
	}
}

// TestGuardBeforeSkip: where systemd runs, guard-before's body starts no
// process when the table is exactly as the early step of the same rpm
// process (one Lua state) left it, and then guard-after's body tells the
// helper so (lifecycle.EarlyIsBefore); an entry registered again (a new
// inode), disabled, added or removed since, no early step in the process,
// an early look that lost an entry of an earlier one, or rpm running
// guard-after first, all start binfmtctl as before. The table is a
// directory of files standing in for binfmt_misc's.
func TestGuardBeforeSkip(t *testing.T) {
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	early, before, after := read("trigger-early.lua"), read("trigger-guard-before.lua"), read("trigger-guard-after.lua")
	const conf = "/usr/lib/binfmt.d/oldway.conf"
	// Lua run between the bodies, in the stand-in table T.
	const (
		reregister = `do local f = io.open(T .. "/admin.new", "w"); f:write("enabled\ninterpreter /x\n"); f:close(); os.rename(T .. "/admin.new", T .. "/admin") end`
		disable    = `do local f = io.open(T .. "/admin", "r+"); f:write("disabled\n"); f:close() end`
		add        = `do local f = io.open(T .. "/oldway", "w"); f:write("enabled\n"); f:close() end`
		remove     = `os.remove(T .. "/docker")`
	)
	for _, c := range []struct {
		name  string
		steps []string // "early", "before", "after" or Lua run in between
		want  string   // binfmtctl's runs, one line each
	}{
		{"unchanged", []string{"early", "before", "after"}, "early\nguard-after early-is-before " + conf},
		{"two packages", []string{"early", "early", "before", "before", "after", "after"}, "early\nearly\nguard-after early-is-before " + conf + "\nguard-after " + conf},
		{"registered again", []string{"early", reregister, "before", "after"}, "early\nguard-before\nguard-after " + conf},
		{"disabled", []string{"early", disable, "before", "after"}, "early\nguard-before\nguard-after " + conf},
		{"added", []string{"early", add, "before", "after"}, "early\nguard-before\nguard-after " + conf},
		{"removed", []string{"early", remove, "before", "after"}, "early\nguard-before\nguard-after " + conf},
		{"added between two looks", []string{"early", add, "early", "before", "after"}, "early\nearly\nguard-after early-is-before " + conf},
		{"lost between two looks", []string{"early", remove, "early", "before", "after"}, "early\nearly\nguard-before\nguard-after " + conf},
		{"no early", []string{"before", "after"}, "guard-before\nguard-after " + conf},
		{"reversed", []string{"early", "after", "before"}, "early\nguard-after " + conf + "\nguard-before"},
		{"next transaction", []string{"early", "before", "after", "before", "after"}, "early\nguard-after early-is-before " + conf + "\nguard-before\nguard-after " + conf},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			bin, out, booted, table := filepath.Join(dir, "binfmtctl"), filepath.Join(dir, "runs"), filepath.Join(dir, "system"), filepath.Join(dir, "binfmt_misc")
			// The stand-in prints the step and the files: "trigger STEP -" dropped.
			if err := os.WriteFile(bin, []byte("#!/bin/sh\nstep=$2; shift 3; echo $step \"$@\" | sed 's/ *$//' >> "+out+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{booted, table} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for n, v := range map[string]string{"register": "", "status": "enabled\n", "admin": "enabled\ninterpreter /x\n", "docker": "disabled\ninterpreter /y\nflags: F\n"} {
				if err := os.WriteFile(filepath.Join(table, n), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := strings.NewReplacer(`posix.access("/usr/bin/binfmtctl"`, `posix.access("`+bin+`"`, `rpm.execute, "/usr/bin/binfmtctl"`, `rpm.execute, "`+bin+`"`, "/run/systemd/system", booted, "/proc/sys/fs/binfmt_misc", table)
			script := "T = \"" + table + "\"\n"
			for _, s := range c.steps {
				body, ok := map[string]string{"early": early, "before": before, "after": after}[s]
				if !ok {
					script += s + "\n"
					continue
				}
				script += `do local list = {"` + conf + `"}; local i = 0; rpm.next_file = function() i = i + 1; return list[i] end end` + "\n"
				script += "do\n" + r.Replace(body) + "\nend\n"
			}
			if o, err := exec.Command("rpm", "--eval", "%{lua:"+script+"}").CombinedOutput(); err != nil || strings.Contains(string(o), "error") {
				t.Fatalf("the bodies do not run in rpm's Lua: %v\n%s", err, o)
			}
			got, err := os.ReadFile(out)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != c.want {
				t.Errorf("steps %q: binfmtctl ran\n%s\nwant\n%s", c.steps, got, c.want)
			}
		})
	}
}
