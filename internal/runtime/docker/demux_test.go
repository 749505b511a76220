package docker

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func frame(stream byte, payload string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

// Docker's log stream: one frame per line, with its time; a long line in
// parts, each with its own time.
func TestDemuxLines(t *testing.T) {
	var b bytes.Buffer
	b.Write(frame(1, "2026-01-02T03:04:05.000000001Z hello\n"))
	b.Write(frame(2, "2026-01-02T03:04:05.000000002Z oops\r\n"))
	b.Write(frame(1, "2026-01-02T03:04:05.000000003Z part one, "))
	b.Write(frame(2, "2026-01-02T03:04:05.000000004Z \n"))
	b.Write(frame(1, "2026-01-02T03:04:05.000000005Z part two\n"))
	b.Write(frame(1, "2026-01-02T03:04:05.000000006Z no newline"))
	type line struct {
		stream, text string
		ns           int
	}
	var got []line
	err := DemuxLines(&b, func(stream string, ts time.Time, text []byte) {
		got = append(got, line{stream, string(text), ts.Nanosecond()})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []line{{"stdout", "hello", 1}, {"stderr", "oops", 2}, {"stderr", "", 4}, {"stdout", "part one, part two", 3}, {"stdout", "no newline", 6}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := DemuxLines(bytes.NewReader(frame(3, "boom")), func(string, time.Time, []byte) {}); err == nil {
		t.Error("a system error frame was not reported")
	}
}
