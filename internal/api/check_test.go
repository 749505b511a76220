package api

import "testing"

func TestCheckReportCount(t *testing.T) {
	r := CheckReport{Results: []CheckResult{{Status: CheckPass}, {Status: CheckWarn}}}
	if r.Failed() {
		t.Fatal("warnings failed the report")
	}
	r.Results = append(r.Results, CheckResult{Status: CheckFail})
	if p, w, f := r.Count(); !r.Failed() || p != 1 || w != 1 || f != 1 {
		t.Fatalf("count %d %d %d", p, w, f)
	}
}
