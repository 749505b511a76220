// Package query answers the read side of the API: an app's state (what
// `moorage ps` shows) and its logs. It changes nothing, takes no lock,
// and reads the engine only through what it exports.
package query

import (
	"log/slog"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/proxy"
	"github.com/moorage/moorage/internal/store"
)

// Options configure a Reader.
type Options struct {
	Engine *engine.Engine
	Store  *store.Store
	Proxy  *proxy.Proxy
	Logger *slog.Logger
}

// Reader answers the read-side queries.
type Reader struct {
	e     *engine.Engine
	st    *store.Store
	proxy *proxy.Proxy
	log   *slog.Logger
}

// New returns a Reader.
func New(opts Options) *Reader {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reader{e: opts.Engine, st: opts.Store, proxy: opts.Proxy, log: log}
}
