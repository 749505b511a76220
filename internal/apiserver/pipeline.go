package apiserver

import (
	"context"
	"net/http"
	"net/url"
	"sync"

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

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
