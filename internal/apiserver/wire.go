package apiserver

import (
	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/certs"
	"github.com/moorage/moorage/internal/runtime"
)

// The server's own types, converted to the API's wire types (internal/api)
// where a handler answers with them. The wire types' JSON is the one the
// server's types had: old clients and the dashboard read it.

// logLineOf converts a runtime's log line.
func logLineOf(l runtime.LogLine) api.LogLine { return api.LogLine(l) }

// certInfoOf converts a certificate's description.
func certInfoOf(c certs.Info) api.CertInfo { return api.CertInfo(c) }
