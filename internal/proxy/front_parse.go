// The front's request parser: what it serves itself, the rest it hands to
// net/http.

package proxy

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parse parses a complete request head, and reports whether the front
// serves it: HTTP/1.1, origin-form target, no body (no Transfer-Encoding,
// one Content-Length of 0 or none), no Upgrade or Expect, one valid Host,
// and only well-formed header fields (CRLF line ends, token names, no
// control characters in values, no line folding). The request is the one
// net/http would read from the same bytes (FuzzFrontMatchesNetHTTP): Host
// is not in the header, and Pragma: no-cache implies Cache-Control.
func (fc *frontConn) parse(head []byte) (*http.Request, bool) {
	if !bytes.HasSuffix(head, crlfcrlf) {
		return nil, false
	}
	// One allocation holds every string of the request.
	hs := string(head[:len(head)-4])
	line, rest, _ := strings.Cut(hs, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !validMethod(method) || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return nil, false
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}

	n := strings.Count(rest, "\r\n") + 1
	if rest == "" {
		n = 0
	}
	h := make(http.Header, n)
	values := make([]string, n)
	host, hosts := "", 0
	closeConn, sawLength := false, false
	i := 0
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(field, ':')
		if colon <= 0 {
			return nil, false // also a line starting with a space: folding
		}
		key, ok := canonicalRequestKey(field[:colon])
		if !ok {
			return nil, false
		}
		v := trimOWS(field[colon+1:])
		for j := 0; j < len(v); j++ {
			if c := v[j]; (c < ' ' && c != '\t') || c == 0x7f {
				return nil, false
			}
		}
		switch key {
		case "Host":
			host, hosts = v, hosts+1
			continue
		case "Content-Length":
			if v != "0" || sawLength {
				return nil, false
			}
			sawLength = true
		case "Transfer-Encoding", "Upgrade", "Expect", "Te", "Http2-Settings":
			return nil, false
		case "Connection":
			for tok := range strings.SplitSeq(v, ",") {
				tok = strings.TrimSpace(tok)
				switch {
				case strings.EqualFold(tok, "close"):
					closeConn = true
				case strings.EqualFold(tok, "keep-alive"), tok == "":
				default:
					return nil, false // upgrades, or hop-by-hop fields to strip: net/http's
				}
			}
		}
		values[i] = v
		if prev, ok := h[key]; ok {
			h[key] = append(prev, v)
		} else {
			h[key] = values[i : i+1 : i+1]
		}
		i++
	}
	if hosts != 1 || !validHost(host) {
		return nil, false
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = noCache // as net/http does (HTTP/1.0 caches)
	}
	return &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		Close:      closeConn,
		RemoteAddr: fc.remote,
		RequestURI: target,
		TLS:        fc.tls,
	}, true
}

// validMethod reports whether m is a token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

// validHost accepts the Host values net/http accepts: a non-empty name or
// address with an optional port, in a conservative character set.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// canonicalRequestKey is canonicalKey for request header names.
func canonicalRequestKey(k string) (string, bool) {
	if c, ok := commonHeaders[k]; ok {
		return c, true
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return "", false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(k), true
}
