package store

import (
	"context"
	"errors"
	"testing"
)

func TestBackupJournal(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.GetJournal(ctx, "hello", JournalPaused); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty journal: %v", err)
	}
	for _, v := range []string{`{"ids":["a"]}`, `{"ids":["a","b"]}`} {
		if err := s.PutJournal(ctx, "hello", JournalPaused, v); err != nil {
			t.Fatal(err)
		}
	}
	s.PutJournal(ctx, "other", JournalPaused, `{}`)
	s.PutJournal(ctx, "hello", JournalSchedule, `{"slot":"x"}`)
	if v, err := s.GetJournal(ctx, "hello", JournalPaused); err != nil || v != `{"ids":["a","b"]}` {
		t.Fatalf("get = %q, %v", v, err)
	}
	es, err := s.ListJournal(ctx, JournalPaused)
	if err != nil || len(es) != 2 || es[0].App != "hello" || es[1].App != "other" {
		t.Fatalf("list = %+v, %v", es, err)
	}
	if err := s.DeleteJournal(ctx, "hello", JournalPaused); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteJournal(ctx, "hello", JournalPaused); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
	if _, err := s.GetJournal(ctx, "hello", JournalSchedule); err != nil {
		t.Fatalf("another key went too: %v", err)
	}
}
