package plan

import (
	"os"
	"strings"
	"testing"

	"github.com/moorage/moorage/internal/runtime"
)

// Step kinds are the names the journal records and the kinds api.PlanStep
// carries: they never change (a journal written by an earlier binary is
// read by a later one, across a crash or a SIGHUP handover).
func TestKindsAreTheJournalNames(t *testing.T) {
	want := "build prepare accessory release check route start cutover stop singleton monitor drain activate adopt prune restore maintenance unroute artifacts volumes backups forget"
	var got []string
	for _, k := range []Kind{KindBuild, KindPrepare, KindAccessory, KindRelease, KindCheck, KindRoute, KindStart, KindCutover, KindStop,
		KindSingleton, KindMonitor, KindDrain, KindActivate, KindAdopt, KindPrune, KindRestore, KindMaintenance, KindUnroute,
		KindArtifacts, KindVolumes, KindBackups, KindForget} {
		got = append(got, string(k))
	}
	if strings.Join(got, " ") != want {
		t.Errorf("kinds %v, want %s", got, want)
	}
}

// The journal the binary before this package wrote for a deploy (see
// internal/engine/testdata/journal_c2be4a7.txt) names and prints its
// steps exactly as the typed steps do for the same deploy.
func TestTypedStepsPrintTheOldJournal(t *testing.T) {
	b, err := os.ReadFile("../engine/testdata/journal_c2be4a7.txt")
	if err != nil {
		t.Fatal(err)
	}
	sp := mustSpec(t, helloSpec)
	tg := target(t, "v4", sp)
	observed := []runtime.Instance{
		running("web", "v3", 1), running("web", "v3", 2), running("worker", "v3", 1), running("scheduler", "v3", 1),
		accessory("db", tg.AccessoryHash["db"]),
	}
	p := Deploy(DeployInput{App: "hello", Kind: "deploy", Target: tg, From: "v3", Build: true, RunTasks: true, Observed: observed})
	i := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if strings.HasPrefix(line, "#") || len(f) < 2 {
			continue
		}
		if f[0] == "plan" {
			if got := strings.SplitN(p.String(), "\n", 2)[0]; got != f[1] {
				t.Errorf("plan heading %q, journaled %q", got, f[1])
			}
			continue
		}
		if i >= len(p.Steps) {
			t.Fatalf("journal has more steps than the plan:\n%s", p)
		}
		if s := p.Steps[i]; string(s.Kind()) != f[0] || s.String() != f[1] {
			t.Errorf("step %d: %s %q, journaled %s %q", i+1, s.Kind(), s.String(), f[0], f[1])
		}
		i++
	}
}
