package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/engine"
	"github.com/moorage/moorage/internal/pipeline"
)

// Headers of a pipeline upload naming its commit.
const (
	HeaderCommitSHA     = "X-Moorage-Commit-Sha"
	HeaderCommitBranch  = "X-Moorage-Commit-Branch"
	HeaderCommitAuthor  = "X-Moorage-Commit-Author"
	HeaderCommitMessage = "X-Moorage-Commit-Message" // URL query-escaped (a header holds no newline)
)

// pipelineRun receives an upload and runs the pipeline on it, streaming
// its events. The pipeline goes on if the client goes away.
func (s *Server) pipelineRun(w http.ResponseWriter, r *http.Request) {
	dir, specName, _, ok := s.upload(w, r)
	if !ok {
		return
	}
	req := pipeline.Request{Dir: dir, SpecName: specName, Runtime: r.URL.Query().Get("runtime"), Owner: owner(r), Plan: dryRunPlan,
		Commit: pipeline.Commit{SHA: r.Header.Get(HeaderCommitSHA), Branch: r.Header.Get(HeaderCommitBranch),
			Author: r.Header.Get(HeaderCommitAuthor), Message: unescape(r.Header.Get(HeaderCommitMessage))}}
	s.streamPipeline(w, r, req)
}

// streamPipeline runs req and streams its events as NDJSON, ending with a
// done event.
func (s *Server) streamPipeline(w http.ResponseWriter, r *http.Request, req pipeline.Request) {
	events := make(chan engine.Event, 1024)
	var mu sync.Mutex
	closed := false
	emit := func(ev engine.Event) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case events <- ev:
		default: // a slow reader loses lines, never the pipeline
		}
	}
	go func() {
		status, err := s.pipelines().Run(context.WithoutCancel(r.Context()), req, emit)
		done := engine.Event{Type: engine.EventDone, Status: status}
		if err != nil {
			done.Text = err.Error()
		}
		mu.Lock()
		closed = true
		mu.Unlock()
		select {
		case events <- done:
		case <-r.Context().Done(): // the client went away
		}
	}()
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for {
		select {
		case ev := <-events:
			if err := enc.Encode(ev); err != nil {
				return
			}
			rc.Flush()
			if ev.Type == engine.EventDone {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
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

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
