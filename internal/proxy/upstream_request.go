// The request head the proxy writes to an upstream.

package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strings"
)

// hop-by-hop request headers, not forwarded (plus those Connection lists).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Proxy-Authenticate", "Proxy-Authorization":
		return true
	}
	return false
}

// writeRequestHead writes r's request line and headers for the upstream:
// hop-by-hop headers dropped, X-Forwarded-For appended to, X-Forwarded-Proto
// and -Host set, the request ID set, the client's Forwarded dropped: the
// same fields the slow path's ReverseProxy (target.rewrite) sends.
func writeRequestHead(bw *bufio.Writer, r *http.Request, reqID string, tokens []string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if p := r.URL.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")

	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && len(tokens) < cap(tokens) {
				tokens = append(tokens, tok)
			}
		}
	}
	for k, vs := range r.Header {
		switch k {
		case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", headerRequestID, "Host":
			continue // set below; Forwarded, from a client, is not trusted (as on the slow path)
		}
		if hopByHop(k) || listed(tokens, k) || mimicsProxyHeader(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		host = h
	}
	bw.WriteString(host)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if reqID != "" {
		bw.WriteString(headerRequestID + ": ")
		bw.WriteString(reqID)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// mimicsProxyHeader reports whether a client's header name reads as one of
// those the proxy sets (X-Forwarded-For, -Proto, -Host, X-Request-Id) once
// "_" is taken for "-", as CGI and WSGI servers do (X_Forwarded_For and
// X-Forwarded-For both become HTTP_X_FORWARDED_FOR): such fields are
// dropped, not forwarded, so a client cannot pass itself off as the proxy.
func mimicsProxyHeader(k string) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	for _, name := range [...]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", headerRequestID} {
		if len(k) == len(name) && equalFoldDash(k, name) {
			return true
		}
	}
	return false
}

// equalFoldDash compares header names case-insensitively, with "_" and
// "-" alike.
func equalFoldDash(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func listed(tokens []string, k string) bool {
	for _, t := range tokens {
		if strings.EqualFold(t, k) {
			return true
		}
	}
	return false
}
