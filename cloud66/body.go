package cloud66

import (
	"bytes"
	"io"
	"sync"
)

// body is a response body read into a reusable buffer.
type body struct{ bytes.Buffer }

// read reads r, expecting size bytes (-1: unknown), and reports whether it
// holds more than limit.
func (b *body) read(r io.Reader, size, limit int64) (tooBig bool, err error) {
	if size > 0 && size <= limit {
		b.Grow(int(size) + bytes.MinRead) // ReadFrom wants MinRead spare to stop without growing
	}
	_, err = b.ReadFrom(io.LimitReader(r, limit+1))
	return int64(b.Len()) > limit, err
}

// maxPooledBody is the largest buffer kept for reuse: a page of stacks is
// about 25 KB; an odd huge answer is left to the garbage collector.
const maxPooledBody = 256 << 10

// bodyPool recycles response buffers: reading a page of stacks into a
// fresh slice cost seven growing allocations (60 KB) per page.
type bodyPool struct{ p sync.Pool }

// sharedBodies is the one pool every Client uses: clients are made per
// person and per command, so a pool per client would never be reused. It
// holds only empty buffers, never a body's contents past its decoding.
var sharedBodies = &bodyPool{p: sync.Pool{New: func() any { return new(body) }}}

func (p *bodyPool) get() *body { return p.p.Get().(*body) }

func (p *bodyPool) put(b *body) {
	if b.Cap() > maxPooledBody {
		return
	}
	b.Reset()
	p.p.Put(b)
}
