package proxy

import "sync"

// bufferSize is the size of the buffers bodies are copied through.
const bufferSize = 32 << 10

// bodyBuffers is the pool every body copy takes its buffer from: the fast
// path's streamed bodies and the ReverseProxy's (its httputil.BufferPool).
var bodyBuffers = &bufferPool{}

// bufferPool is a pool of bufferSize buffers. Buffers travel in *[]byte
// boxes, and the empty boxes are pooled too, so a Get/Put cycle allocates
// nothing once warm.
type bufferPool struct {
	buffers sync.Pool // *[]byte holding a buffer
	boxes   sync.Pool // *[]byte holding nil
}

// Get returns a buffer of bufferSize bytes.
func (p *bufferPool) Get() []byte {
	box, _ := p.buffers.Get().(*[]byte)
	if box == nil {
		return make([]byte, bufferSize)
	}
	buf := *box
	*box = nil
	p.boxes.Put(box)
	return buf
}

// Put returns a buffer to the pool.
func (p *bufferPool) Put(buf []byte) {
	if cap(buf) < bufferSize {
		return
	}
	box, _ := p.boxes.Get().(*[]byte)
	if box == nil {
		box = new([]byte)
	}
	*box = buf[:bufferSize]
	p.buffers.Put(box)
}
