package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLog writes one JSON object per request to a writer:
//
//	{"time":"2026-01-02T15:04:05.123456Z","app":"shop","method":"GET","host":"example.com",
//	 "path":"/x","status":200,"bytes":1234,"duration_ms":1.234,"upstream":"shop-v3-web-1",
//	 "request_id":"…","remote":"203.0.113.7","proto":"HTTP/1.1"}
//
// Lines are encoded by hand into pooled buffers and written with one Write
// each, under a mutex, so concurrent requests never interleave.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

// accessEntry is what a request logs.
type accessEntry struct {
	start                 time.Time
	duration              time.Duration
	app, method, host     string
	path, upstream, reqID string
	remote, proto         string
	status                int
	bytes                 int64
}

var logBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *accessLog) write(e *accessEntry) {
	bp := logBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = e.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, `","app":`...)
	b = appendJSONString(b, e.app)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.duration.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, e.upstream)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, e.reqID)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, e.remote)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, e.proto)
	b = append(b, "}\n"...)
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	*bp = b
	logBuffers.Put(bp)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
