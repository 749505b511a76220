package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/store"
)

// backUp runs backupLocked as BackupOp does and returns its error.
func backUp(ctx context.Context, m *Manager, req BackupRequest) error {
	var err error
	op := m.e.StartOp(func(_ context.Context, op *engine.Op) (string, error) {
		_, err = m.backupLocked(ctx, op, req)
		return store.DeploySucceeded, nil
	})
	<-op.Done()
	return err
}

// A backup reads the app and its active release under the app's lock
// (engine.OperateLocked), with the errors it has always given.
func TestBackupReadsTheActiveReleaseUnderTheLock(t *testing.T) {
	m := testManager(t)
	ctx := context.Background()
	req := BackupRequest{App: "hello", Owner: "alice"}
	if err := backUp(ctx, m, req); !errors.Is(err, store.ErrNotFound) || err.Error() != "app: not found" {
		t.Fatalf("app missing: %v", err)
	}
	if _, err := m.st.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	if err := backUp(ctx, m, req); !errors.Is(err, engine.ErrNotDeployed) || err.Error() != "back up hello: app has no active release" {
		t.Fatalf("not deployed: %v", err)
	}
	activate(t, m, "hello", nil)
	if err := backUp(ctx, m, req); err == nil || err.Error() != "hello has no volume and no accessory with `backup: postgres`: nothing to back up" {
		t.Fatalf("nothing to back up: %v", err)
	}
	if l, err := m.st.GetLock(ctx, "hello"); err == nil {
		t.Fatalf("lock left: %+v", l)
	}

	// Held by another operation: the wait for it, cut short, is worded.
	held, release := make(chan struct{}), make(chan struct{})
	other := m.e.StartOp(func(ctx context.Context, op *engine.Op) (string, error) {
		return store.DeploySucceeded, m.e.OperateLocked(ctx, op, engine.LockedOperation{App: "hello", Owner: "bob", Lock: "deploy v2"},
			func(context.Context, *store.App, *store.Release) error {
				close(held)
				<-release
				return nil
			})
	})
	<-held
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	err := backUp(wctx, m, req)
	close(release)
	<-other.Done()
	if err == nil || !strings.HasPrefix(err.Error(), "wait for the lock of hello: ") {
		t.Fatalf("lock wait cut short: %v", err)
	}
}

// A verify of a postgres backup reads the active release (no lock), with
// the store's error when there is none.
func TestVerifyPostgresWithNoActiveRelease(t *testing.T) {
	m := testManager(t)
	ctx := context.Background()
	if _, err := m.st.EnsureApp(ctx, "hello", "process"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "db.pgdump")
	data := []byte("not really a dump")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	b := &store.Backup{ID: "hello-postgres-db-1", App: "hello", Kind: BackupPostgres, Target: "db", Path: path,
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Status: store.BackupOK, Trigger: "manual", CreatedAt: time.Now().UTC()}
	if err := m.st.PutBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err := m.VerifyBackup(ctx, "hello", b.ID, &out)
	if !errors.Is(err, store.ErrNotFound) || err.Error() != "hello has no active release to verify backup hello-postgres-db-1 in (a postgres backup is verified by restoring it into a scratch database of the active release's db accessory); deploy the app first: not found" {
		t.Fatalf("verify with no active release: %v", err)
	}
	if !strings.HasPrefix(out.String(), "checksum ok: ") {
		t.Fatalf("verify output: %q", out.String())
	}
}
