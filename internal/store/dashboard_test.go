package store

import (
	"context"
	"errors"
	"testing"
)

func TestDashboardUsersAndAudit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.GetDashboardUser(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.PutDashboardUser(ctx, DashboardUser{Name: "alice", Role: "readonly", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDashboardUser(ctx, DashboardUser{Name: "alice", Role: "operator", Hash: "h2"}); err != nil {
		t.Fatal(err)
	}
	u, err := s.GetDashboardUser(ctx, "alice")
	if err != nil || u.Role != "operator" || u.Hash != "h2" {
		t.Fatalf("replaced user: %+v %v", u, err)
	}
	us, err := s.ListDashboardUsers(ctx)
	if err != nil || len(us) != 1 || us[0].Hash != "" {
		t.Fatalf("list (never with hashes): %+v %v", us, err)
	}
	if err := s.DeleteDashboardUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDashboardUser(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	for _, a := range []string{"login", "rollback"} {
		if err := s.AddAudit(ctx, AuditEntry{User: "alice", IP: "1.2.3.4", Action: a, Target: "hello", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.ListAudit(ctx, 10)
	if err != nil || len(es) != 2 || es[0].Action != "rollback" || es[1].At.IsZero() {
		t.Fatalf("audit, newest first: %+v %v", es, err)
	}
}
