package backup

import (
	"strings"
	"testing"
)

func TestPgExitError(t *testing.T) {
	// What the tool said comes back, its last lines.
	err := pgExitError("pg_restore", 1, "a\nb\nc\nd\ne\nf\npg_restore: error: could not connect\n")
	if got := err.Error(); got != "pg_restore exited with status 1: c\nd\ne\nf\npg_restore: error: could not connect" {
		t.Fatalf("got %q", got)
	}
	// A tool the image lacks (docker exec: 126 or 127, nothing said) names
	// the tools the image must have.
	for _, code := range []int{126, 127} {
		err := pgExitError("createdb", code, "")
		if !strings.Contains(err.Error(), "could not run createdb in the accessory") || !strings.Contains(err.Error(), "pg_dump, pg_restore, psql, createdb and dropdb") {
			t.Fatalf("%d: %v", code, err)
		}
	}
	// A 127 from inside a tool that said why keeps what it said.
	if err := pgExitError("psql", 127, "psql: fatal\n"); strings.Contains(err.Error(), "could not run") {
		t.Fatalf("got %v", err)
	}
}
