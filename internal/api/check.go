package api

// Statuses of a check finding.
const (
	CheckPass = "pass"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// CheckResult is one finding of `moorage check` (internal/preflight's
// Result on the wire).
type CheckResult struct {
	Name    string  `json:"name"`   // "spec", "security.root", "checks[0]", ...
	Status  string  `json:"status"` // CheckPass, CheckWarn or CheckFail
	Message string  `json:"message"`
	Fix     string  `json:"fix,omitempty"`    // one line; empty on pass
	Output  string  `json:"output,omitempty"` // a check's output (tail)
	Seconds float64 `json:"seconds,omitempty"`
}

// CheckReport is the outcome of `moorage check` (internal/preflight's
// Report on the wire).
type CheckReport struct {
	App      string        `json:"app"`
	Runtime  string        `json:"runtime,omitempty"`
	Plan     string        `json:"plan,omitempty"`      // the plan a deploy would run
	PlanNote string        `json:"plan_note,omitempty"` // why there is no plan
	Results  []CheckResult `json:"results"`
}

// Failed reports whether any finding failed.
func (r *CheckReport) Failed() bool {
	for _, x := range r.Results {
		if x.Status == CheckFail {
			return true
		}
	}
	return false
}

// Count returns how many findings have each status.
func (r *CheckReport) Count() (pass, warn, fail int) {
	for _, x := range r.Results {
		switch x.Status {
		case CheckPass:
			pass++
		case CheckWarn:
			warn++
		case CheckFail:
			fail++
		}
	}
	return
}

// SpecCheck is the finding of parsing the spec: the server's first, and
// the CLI's only one when the spec is invalid locally.
func SpecCheck(file string, err error) CheckResult {
	if err != nil {
		return CheckResult{Name: "spec", Status: CheckFail, Message: err.Error(), Fix: "correct " + file + " as the message says (see docs/spec.md)"}
	}
	return CheckResult{Name: "spec", Status: CheckPass, Message: file + " is valid"}
}
