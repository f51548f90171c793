package scriptlets

import _ "embed"

// The file trigger bodies, as kept in this directory. They use no macros.
var (
	//go:embed trigger-leaving.sh
	TriggerLeaving string
	//go:embed trigger-removing.sh
	TriggerRemoving string
	//go:embed trigger-early.sh
	TriggerEarly string
	//go:embed trigger-guard-before.sh
	TriggerGuardBefore string
	//go:embed trigger-guard-after.sh
	TriggerGuardAfter string
)

// BinfmtDirs are the directories the triggers watch: where packages put
// binfmt.d files (systemd's own trigger watches /usr/lib/binfmt.d alone).
var BinfmtDirs = []string{"/usr/lib/binfmt.d", "/usr/local/lib/binfmt.d", "/etc/binfmt.d"}

// Trigger is one rpm file trigger of every package that ships binfmtctl.
type Trigger struct {
	// Kind is the spec section without "%", e.g. "transfiletriggerin".
	Kind string
	// Priority is the -P value; 0 is rpm's default.
	Priority int
	Paths    []string
	Body     string
}

// Priorities around systemd's binfmt trigger (-P 1000700 in systemd's
// src/rpm/triggers.systemd.in); rpm runs higher priorities first.
const (
	SystemdBinfmtPriority = 1000700
	GuardBeforePriority   = SystemdBinfmtPriority + 1
	GuardAfterPriority    = SystemdBinfmtPriority - 1
)

// Triggers are the helper's file triggers, which every package shipping
// /usr/bin/binfmtctl carries (docs/lifecycle.md, "File triggers"). When
// two such packages are installed, both carry them and rpm runs each
// twice; the helper does each step once per transaction.
func Triggers() []Trigger {
	return []Trigger{
		{Kind: "transfiletriggerun", Priority: GuardBeforePriority, Paths: BinfmtDirs, Body: TriggerLeaving},
		{Kind: "filetriggerun", Paths: BinfmtDirs, Body: TriggerRemoving},
		{Kind: "filetriggerin", Paths: BinfmtDirs, Body: TriggerEarly},
		{Kind: "transfiletriggerin", Priority: GuardBeforePriority, Paths: BinfmtDirs, Body: TriggerGuardBefore},
		{Kind: "transfiletriggerin", Priority: GuardAfterPriority, Paths: BinfmtDirs, Body: TriggerGuardAfter},
	}
}
