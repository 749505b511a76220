package store

import (
	"context"
	"errors"
	"testing"

	"github.com/moorage/moorage/internal/spec"
)

// DeleteApp forgets every record of an app and nothing of another; the
// audit stays, and so do the app's backups unless asked. A new app of the
// same name starts at v1.
func TestDeleteApp(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	sp := &spec.Spec{App: "hello", Runtime: "process", Services: map[string]*spec.Service{"web": {Name: "web", Replicas: 1}}}
	for _, app := range []string{"hello", "other"} {
		if _, err := s.EnsureApp(ctx, app, "process"); err != nil {
			t.Fatal(err)
		}
		d := &Deploy{App: app, Kind: KindDeploy, Owner: "test"}
		if err := s.CreateDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		s.StartStep(ctx, d.ID, "build", "build v1")
		r := &Release{App: app, Cause: "deploy", Runtime: "process", Spec: sp, Formation: map[string]int{}, DeployID: d.ID}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		s.SetConfig(ctx, app, []ConfigVar{{Key: "A", Value: []byte("1")}}, nil)
		s.AddEvent(ctx, AppEvent{App: app, Kind: "deploy", Message: "x"})
		s.PutJournal(ctx, app, "k", "v")
		s.PutBackup(ctx, &Backup{ID: "b-" + app, App: app, Kind: "volume", Target: "data", Path: "/x", Status: "succeeded", Trigger: "manual"})
	}
	s.AddAudit(ctx, AuditEntry{User: "alice", IP: "cli", Action: "apps destroy", Target: "hello", Outcome: "succeeded"})

	for i := 0; i < 2; i++ { // twice: idempotent
		if err := s.DeleteApp(ctx, "hello", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetApp(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Errorf("app: %v", err)
	}
	if rels, _ := s.ListReleases(ctx, "hello"); len(rels) != 0 {
		t.Errorf("releases: %d", len(rels))
	}
	if ds, _ := s.ListDeploys(ctx, "hello", 0); len(ds) != 0 {
		t.Errorf("deploys: %d", len(ds))
	}
	if c, _ := s.GetConfig(ctx, "hello"); len(c) != 0 {
		t.Errorf("config: %v", c)
	}
	if _, err := s.GetJournal(ctx, "hello", "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("journal: %v", err)
	}
	if bs, _ := s.ListBackups(ctx, "hello"); len(bs) != 1 {
		t.Errorf("backups kept: %d", len(bs))
	}
	if es, _ := s.ListAudit(ctx, 10); len(es) != 1 {
		t.Errorf("audit: %d entries", len(es))
	}
	if rels, _ := s.ListReleases(ctx, "other"); len(rels) != 1 {
		t.Errorf("the other app lost its releases")
	}
	s.DeleteApp(ctx, "hello", true)
	if bs, _ := s.ListBackups(ctx, "hello"); len(bs) != 0 {
		t.Errorf("backups: %d", len(bs))
	}
	if bs, _ := s.ListBackups(ctx, "other"); len(bs) != 1 {
		t.Errorf("the other app lost its backups")
	}
	s.EnsureApp(ctx, "hello", "process")
	r := &Release{App: "hello", Cause: "deploy", Runtime: "process", Spec: sp, Formation: map[string]int{}}
	if err := s.CreateRelease(ctx, r); err != nil || r.Version != 1 {
		t.Errorf("a new hello starts at v%d (%v), want v1", r.Version, err)
	}
}

// A user's maintenance switch never replaces the stopped page of
// `moorage stop` (or of a destroy): refused with ErrStopped, in the
// update itself; any other mode it replaces, and an app that does not
// exist is ErrNotFound.
func TestSetUserMaintenance(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	get := func() string {
		t.Helper()
		m, err := s.Maintenance(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, m := range []string{`{"message":"upgrading"}`, "", `{"message":"again"}`} {
		if err := s.SetUserMaintenance(ctx, "hello", m); err != nil || get() != m {
			t.Fatalf("set %q: %v, recorded %q", m, err, get())
		}
	}
	for _, stopped := range []string{`{"message":"hello is stopped.","stopped":true}`, `{"stopped":true,"destroying":true}`} {
		if err := s.SetMaintenance(ctx, "hello", stopped); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"", `{"message":"mine"}`} {
			if err := s.SetUserMaintenance(ctx, "hello", m); !errors.Is(err, ErrStopped) || !errors.Is(err, ErrConflict) {
				t.Errorf("user's %q over %s: %v, want ErrStopped", m, stopped, err)
			}
			if get() != stopped {
				t.Errorf("the stopped page was replaced: %q", get())
			}
		}
	}
	if err := s.SetUserMaintenance(ctx, "nosuch", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("an app that does not exist: %v", err)
	}
}
