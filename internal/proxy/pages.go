package proxy

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
)

//go:embed pages/*.html
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "pages/error.html"))

// The fixed pages are rendered once; the 503 page names the app and is
// rendered when its route is built.
var (
	pageNotFound         = renderPage(http.StatusNotFound, "No app is routed for this host and path.")
	pageTooLarge         = renderPage(http.StatusRequestEntityTooLarge, "The request body is larger than this app accepts.")
	pageBadGateway       = renderPage(http.StatusBadGateway, "The app failed while answering this request.")
	pageGatewayTimeout   = renderPage(http.StatusGatewayTimeout, "The app took too long to answer this request.")
	pageStaticNotFound   = renderPage(http.StatusNotFound, "No such file.")
	pageForbidden        = renderPage(http.StatusForbidden, "This file cannot be read.")
	pageMethodNotAllowed = renderPage(http.StatusMethodNotAllowed, "Static files answer GET and HEAD only.")
	pageBadBody          = renderPage(http.StatusBadRequest, "The request body was not sent whole.")
	pageBodyNotStored    = renderPage(http.StatusInternalServerError, "The proxy could not store the request body.")
	pageBodyBusy         = renderPage(http.StatusServiceUnavailable, "The proxy is buffering too many request bodies; try again shortly.")
)

// unavailablePage is the 503 page of a route with no healthy target.
func unavailablePage(app, service string) []byte {
	return renderPage(http.StatusServiceUnavailable,
		"No healthy instance of "+app+"/"+service+"; the app is being deployed or is down. Please try again shortly.")
}

func renderPage(status int, message string) []byte {
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, struct {
		Status         int
		Title, Message string
	}{status, http.StatusText(status), message})
	if err != nil {
		panic("proxy: render error page: " + err.Error()) // the template is embedded; this is a bug
	}
	return b.Bytes()
}

// writePage answers with an error page; retryAfter, when set, is the
// Retry-After header in seconds.
func writePage(w http.ResponseWriter, status int, page []byte, retryAfter string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_, _ = w.Write(page)
}
