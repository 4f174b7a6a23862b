// Package scripts holds the tests of the project's scripts: actionlint
// over the GitHub workflows (scripts/actionlint.sh) and the release build
// (scripts/release.sh).
package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// tool is the path the environment variable env gives, as scripts/test.sh
// sets it from the script that installs the tool; without it the test
// skips, unless env_REQUIRED=1.
func tool(t *testing.T, env, script string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		if os.Getenv(env+"_REQUIRED") == "1" {
			t.Fatalf("%s_REQUIRED=1 but %s is unset; run %s=$(%s)", env, env, env, script)
		}
		t.Skipf("%s unset: set it to the path printed by %s", env, script)
	}
	return path
}

// TestActionlintRefusesBrokenWorkflow wants the pinned actionlint to fail
// on a workflow with three known mistakes, naming each by line and rule,
// and to pass the project's own workflows: the check scripts/test.sh runs
// can fail.
func TestActionlintRefusesBrokenWorkflow(t *testing.T) {
	actionlint := tool(t, "HWCAUDIT_TEST_ACTIONLINT", "scripts/actionlint.sh")

	out, err := exec.Command(actionlint, "-no-color", "-oneline", "testdata/broken-workflow.yml").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("actionlint on a broken workflow: %v, want exit 1 (problems found)\n%s", err, out)
	}
	for _, want := range []string{
		`:10:3: unknown permission scope "packagez".* \[permissions\]`,
		`:12:3: job "publish" needs job "tests" which does not exist.* \[job-needs\]`,
		`:16:24: property "ref_nam" is not defined.* \[expression\]`,
	} {
		if !regexp.MustCompile(`(?m)^testdata/broken-workflow\.yml` + want + `$`).Match(out) {
			t.Errorf("actionlint did not report %q:\n%s", want, out)
		}
	}

	workflows, err := filepath.Glob("../.github/workflows/*.yml")
	if err != nil || len(workflows) < 2 {
		t.Fatalf("workflows %v, %v: want ci.yml and release.yml", workflows, err)
	}
	if out, err := exec.Command(actionlint, append([]string{"-no-color", "-oneline"}, workflows...)...).CombinedOutput(); err != nil {
		t.Errorf("actionlint on the project's workflows: %v\n%s", err, out)
	}
}
