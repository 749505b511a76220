// Reading an upstream's response: its head, its headers and its body.

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
)

// hdrEntry is a response header parsed into the attempt's scratch buffer.
type hdrEntry struct {
	key        string
	start, end int
}

// respHead is what the proxy needs of a response head.
type respHead struct {
	status   int
	length   int64 // -1: unknown
	chunked  bool
	close    bool // the connection cannot be reused
	noBody   bool
	gotBytes bool // anything of the response was read
}

// readResponseHead parses the head of the response to a request with the
// given method (skipping 1xx ones) into a: the headers to forward go to
// a.hdrBuf/a.hdrEntries. Interim and final heads share one size limit.
func readResponseHead(a *attempt, br *bufio.Reader, method string) (respHead, error) {
	var hd respHead
	total := 0
	for {
		a.hdrBuf, a.hdrEntries = a.hdrBuf[:0], a.hdrEntries[:0]
		line, err := readLine(a, br)
		if len(line) > 0 || err == nil {
			hd.gotBytes = true
		}
		if err != nil {
			return hd, err
		}
		if total += len(line); total > maxResponseHeaderBytes {
			return hd, errResponseTooLarge
		}
		// HTTP/1.x SP 3DIGIT [SP reason]
		if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return hd, fmt.Errorf("%w: status line %q", errBadResponse, truncate(line))
		}
		status := 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return hd, fmt.Errorf("%w: status line %q", errBadResponse, truncate(line))
			}
			status = status*10 + int(c-'0')
		}
		if status < 100 || status > 599 {
			return hd, fmt.Errorf("%w: status %d", errBadResponse, status)
		}
		http10 := line[7] == '0'
		hd = respHead{status: status, length: -1, close: http10, gotBytes: true}
		if err := readHeaders(a, br, &hd, http10, &total); err != nil {
			return hd, err
		}
		if status >= 100 && status < 200 {
			if status == http.StatusSwitchingProtocols {
				return hd, fmt.Errorf("%w: 101 to a request without Upgrade", errBadResponse)
			}
			continue // interim responses (100, 103) are not forwarded
		}
		hd.noBody = method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified
		if method == http.MethodConnect && status < 300 {
			// The app would open a tunnel: the connection is no longer
			// HTTP, and the front has no tunnel to give the client.
			return hd, fmt.Errorf("%w: %d to CONNECT", errBadResponse, status)
		}
		if !hd.noBody && !hd.chunked && hd.length < 0 {
			hd.close = true // the body ends when the upstream closes
		}
		return hd, nil
	}
}

// readLine reads one CRLF- or LF-terminated line without it; lines longer
// than br's buffer are assembled in a's scratch space.
func readLine(a *attempt, br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > maxResponseHeaderBytes {
				return nil, errResponseTooLarge
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readHeaders parses header fields up to the blank line, counting their
// bytes in *total. Hop-by-hop fields are interpreted (framing, Connection)
// and dropped.
func readHeaders(a *attempt, br *bufio.Reader, hd *respHead, http10 bool, total *int) error {
	keepAlive := false
	lengthIdx := -1
	tokens := a.connTokens[:0]
	for {
		line, err := readLine(a, br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if *total += len(line); *total > maxResponseHeaderBytes {
			return errResponseTooLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: obsolete line folding", errBadResponse)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: header line %q", errBadResponse, truncate(line))
		}
		key, ok := canonicalKey(line[:colon])
		if !ok {
			return fmt.Errorf("%w: header name %q", errBadResponse, truncate(line[:colon]))
		}
		value := bytes.TrimRight(bytes.TrimLeft(line[colon+1:], " \t"), " \t")
		if !validFieldValue(value) {
			return fmt.Errorf("%w: control character in header %s", errBadResponse, key)
		}
		switch key {
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok {
				return fmt.Errorf("%w: Content-Length %q", errBadResponse, truncate(value))
			}
			if hd.length >= 0 && n != hd.length {
				return fmt.Errorf("%w: conflicting Content-Length headers", errBadResponse)
			}
			if hd.length >= 0 {
				continue
			}
			hd.length = n
			lengthIdx = len(a.hdrEntries)
		case "Transfer-Encoding":
			if !bytes.EqualFold(value, []byte("chunked")) || hd.chunked || http10 {
				// HTTP/1.0 has no chunked coding: its framing is faulty
				// (RFC 9112, 6.1).
				return fmt.Errorf("%w: unsupported Transfer-Encoding %q", errBadResponse, truncate(value))
			}
			hd.chunked = true
			continue
		case "Connection":
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					hd.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				case len(tok) > 0:
					tokens = append(tokens, string(tok))
				}
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authenticate":
			continue
		}
		start := len(a.hdrBuf)
		a.hdrBuf = append(a.hdrBuf, value...)
		a.hdrEntries = append(a.hdrEntries, hdrEntry{key: key, start: start, end: len(a.hdrBuf)})
	}
	if http10 && keepAlive {
		hd.close = false
	}
	if hd.chunked && lengthIdx >= 0 {
		// Both: chunked wins (RFC 9112 6.3); the length is dropped and the
		// connection not reused.
		a.hdrEntries = append(a.hdrEntries[:lengthIdx], a.hdrEntries[lengthIdx+1:]...)
		hd.length = -1
		hd.close = true
	}
	if len(tokens) > 0 {
		kept := a.hdrEntries[:0]
		for _, e := range a.hdrEntries {
			if !listed(tokens, e.key) {
				kept = append(kept, e)
			}
		}
		a.hdrEntries = kept
	}
	return nil
}

// setHeaders copies the parsed response headers into h with two
// allocations: one string holding every value, one slice of values.
func (a *attempt) setHeaders(h http.Header) {
	if len(a.hdrEntries) == 0 {
		return
	}
	all := string(a.hdrBuf)
	values := make([]string, len(a.hdrEntries))
	for i, e := range a.hdrEntries {
		values[i] = all[e.start:e.end]
		if prev, ok := h[e.key]; ok {
			h[e.key] = append(prev, values[i])
		} else {
			h[e.key] = values[i : i+1 : i+1]
		}
	}
}

// copyBody copies the response body from br to the client. keep reports
// whether the connection can be reused; rerr is an upstream failure, werr a
// client one.
func copyBody(a *attempt, br *bufio.Reader, hd *respHead) (keep bool, rerr, werr error) {
	switch {
	case hd.noBody:
		return true, nil, nil
	case hd.chunked:
		return copyChunked(a, br)
	case hd.length >= 0:
		n := hd.length
		for n > 0 {
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return false, err, nil
				}
			}
			chunk := int(min(int64(br.Buffered()), n))
			p, _ := br.Peek(chunk)
			if _, err := a.Write(p); err != nil {
				return false, nil, err
			}
			_, _ = br.Discard(chunk)
			n -= int64(chunk)
		}
		return true, nil, nil
	default:
		// Until the upstream closes.
		bp := bodyBuffers.Get()
		defer bodyBuffers.Put(bp)
		for {
			n, err := br.Read(bp)
			if n > 0 {
				if _, werr := a.Write(bp[:n]); werr != nil {
					return false, nil, werr
				}
				a.Flush()
			}
			if err == io.EOF {
				return false, nil, nil
			}
			if err != nil {
				return false, err, nil
			}
		}
	}
}

// copyChunked copies a chunked body, flushing every chunk through (server
// sent events, streaming), then its trailers.
func copyChunked(a *attempt, br *bufio.Reader) (keep bool, rerr, werr error) {
	bp := bodyBuffers.Get()
	defer bodyBuffers.Put(bp)
	cr := httputil.NewChunkedReader(br)
	for {
		n, err := cr.Read(bp)
		if n > 0 {
			if _, werr := a.Write(bp[:n]); werr != nil {
				return false, nil, werr
			}
			if br.Buffered() == 0 {
				a.Flush() // nothing more at hand: send what we have
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err, nil
		}
	}
	// Trailers, within the size limit of a head.
	h := a.w.Header()
	total := 0
	for {
		line, err := readLine(a, br)
		if err != nil {
			return false, err, nil
		}
		if len(line) == 0 {
			return true, nil, nil
		}
		if total += len(line); total > maxResponseHeaderBytes {
			return false, errResponseTooLarge, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false, fmt.Errorf("%w: trailer line %q", errBadResponse, truncate(line)), nil
		}
		key, ok := canonicalKey(line[:colon])
		if !ok {
			return false, fmt.Errorf("%w: trailer name %q", errBadResponse, truncate(line[:colon])), nil
		}
		value := bytes.TrimRight(bytes.TrimLeft(line[colon+1:], " \t"), " \t")
		if !validFieldValue(value) {
			return false, fmt.Errorf("%w: control character in trailer %s", errBadResponse, key), nil
		}
		if hopByHop(key) || key == "Content-Length" {
			continue
		}
		h[http.TrailerPrefix+key] = append(h[http.TrailerPrefix+key], string(value))
	}
}

// validFieldValue reports whether a header value has no control
// characters (tabs aside).
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: digits only (no sign,
// no list), as net/http reads it.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// canonicalKey returns the canonical form of a header name, without
// allocating for common ones; ok is false for an invalid name.
func canonicalKey(b []byte) (string, bool) {
	if k, ok := commonHeaders[string(b)]; ok {
		return k, true
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return "", false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(b)), true
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// commonHeaders maps common response header names, as sent canonical or in
// lower case, to their canonical form.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Cross-Origin-Opener-Policy",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Permissions-Policy",
		"Pragma", "Proxy-Authenticate", "Proxy-Connection", "Referrer-Policy", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Vary",
		"Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By",
		"X-Request-Id", "X-Xss-Protection", "Server-Timing", "Timing-Allow-Origin",
		// Request headers.
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie",
		"Content-Type", "Dnt", "Expect", "Forwarded", "Host", "Http2-Settings", "Idempotency-Key", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin",
		"Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Requested-With", "X-Csrftoken",
	} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	// Spellings that differ from the canonical form beyond case.
	m["ETag"] = "Etag"
	m["WWW-Authenticate"] = "Www-Authenticate"
	m["X-Request-ID"] = "X-Request-Id"
	m["X-XSS-Protection"] = "X-Xss-Protection"
	m["TE"] = "Te"
	m["DNT"] = "Dnt"
	m["X-Real-IP"] = "X-Real-Ip"
	m["X-CSRFToken"] = "X-Csrftoken"
	return m
}()

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
