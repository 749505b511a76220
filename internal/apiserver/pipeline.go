package apiserver

import (
	"context"
	"github.com/moorage/moorage/internal/api"
	"net/http"
	"net/url"
	"sync"

	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/pipeline"
	"github.com/moorage/moorage/internal/store"
)

// pipelineRun receives an upload and runs the pipeline on it, streaming
// its events. The pipeline goes on if the client goes away.
func (s *Server) pipelineRun(w http.ResponseWriter, r *http.Request) {
	dir, specName, _, ok := s.upload(w, r)
	if !ok {
		return
	}
	req := pipeline.Request{Dir: dir, SpecName: specName, Runtime: r.URL.Query().Get("runtime"), Owner: owner(r), Plan: dryRunPlan}
	if c := commitOf(r); c != nil {
		req.Commit = *c
	}
	s.streamPipeline(w, r, req)
}

// streamPipeline runs req and streams its events as NDJSON, ending with a
// done event. The pipeline goes on if the client goes away, and a slow
// client loses no line: the events are kept as an operation's are.
func (s *Server) streamPipeline(w http.ResponseWriter, r *http.Request, req pipeline.Request) {
	ctx := context.WithoutCancel(r.Context())
	stream(w, r, engine.Go(func(emit func(engine.Event)) (string, error) {
		return s.pipelines().Run(ctx, req, emit)
	}))
}

var (
	runnersMu sync.Mutex
	runners   = map[*engine.Engine]*pipeline.Runner{}
)

// pipelines is the server's pipeline runner (one per engine: pipelines of
// an app run one at a time).
func (s *Server) pipelines() *pipeline.Runner {
	runnersMu.Lock()
	defer runnersMu.Unlock()
	r := runners[s.Engine]
	if r == nil {
		r = &pipeline.Runner{Engine: s.Engine, WorkDir: s.UploadDir}
		runners[s.Engine] = r
	}
	return r
}

// commitOf reads the commit an upload names in its headers (nil: none).
func commitOf(r *http.Request) *store.Commit {
	h := r.Header
	c := &store.Commit{SHA: h.Get(api.HeaderCommitSHA), Branch: h.Get(api.HeaderCommitBranch), Author: h.Get(api.HeaderCommitAuthor),
		Message: unescape(h.Get(api.HeaderCommitMessage)), Describe: h.Get(api.HeaderCommitDescribe)}
	if c.SHA == "" {
		return nil
	}
	return c
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
