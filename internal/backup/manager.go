// Package backup makes, verifies, imports and restores an app's backups
// (volume archives and postgres dumps), runs the scheduled ones, and puts
// back what a server killed in the middle of one left behind.
//
// It is built on the engine and uses it only through what the engine
// exports: a restore is an operation through the engine's one entry point
// (OperateActive) with its own planner (plan.Restore) and a step handler
// it registers (plan.RestoreBackup); backups take the app's lock
// (Engine.Lock) and run as the engine's operations (StartOp); recovery
// and the scheduler are hooks (Engine.AddHooks).
package backup

import (
	"log/slog"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/plan"
	"github.com/moorage/moorage/internal/store"
)

// Options configure a Manager.
type Options struct {
	Engine *engine.Engine
	Store  *store.Store
	// DataDir holds the backups by default (<data>/backups/<app>) and
	// the scratch space of verifies.
	DataDir string
	Logger  *slog.Logger
}

// Manager is an app's backups, on top of the engine.
type Manager struct {
	e       *engine.Engine
	st      *store.Store
	dataDir string
	log     *slog.Logger
}

// New returns a Manager and registers it with the engine: the restore
// step's handler, the recovery at start (interrupted restores put back,
// paused instances resumed, interrupted backups closed), the resume of a
// runtime that answered late, and the scheduler. Call it before the
// engine's Start.
func New(opts Options) *Manager {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{e: opts.Engine, st: opts.Store, dataDir: opts.DataDir, log: log}
	m.e.Handle(plan.KindRestore, engine.On(m.restoreStep))
	m.e.AddHooks(engine.Hooks{
		Recover:         m.recoverBackups,
		RuntimeAnswered: m.resumePaused,
		Background:      m.scheduleBackups,
	})
	return m
}
