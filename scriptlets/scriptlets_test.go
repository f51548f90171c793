package scriptlets

import (
	"os/exec"
	"strings"
	"testing"
)

func TestRenderLeavesNoMacro(t *testing.T) {
	s := Render("foo", "1.2", "3")
	for name, body := range map[string]string{"post": s.Post, "preun": s.Preun, "postun": s.Postun} {
		if strings.Contains(body, "%{") {
			t.Errorf("%s still holds a macro:\n%s", name, body)
		}
		if !strings.Contains(body, "'foo-1.2-3'") {
			t.Errorf("%s does not pass the package's name-version-release:\n%s", name, body)
		}
		// Scriptlets must never fail a transaction.
		if !strings.HasSuffix(strings.TrimSpace(body), "|| :") && !strings.HasSuffix(strings.TrimSpace(body), ":") {
			t.Errorf("%s does not end in || : or :", name)
		}
		if out, err := exec.Command("sh", "-n", "-c", body).CombinedOutput(); err != nil {
			t.Errorf("%s is not valid sh: %v\n%s", name, err, out)
		}
	}
}
