package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// The replicas scenario counts PostgreSQL round trips by putting pgProxy
// between a replica and the server. It reads the frontend (client to
// server) half of the wire protocol: the first message of a connection
// (the startup message, or an SSLRequest / GSSENCRequest before it) has
// no type byte, an int32 length (counting itself) and a payload; every
// later message is one type byte, an int32 length and a payload. A round
// trip is what makes the client wait for the server: a Sync ('S'), which
// ends an extended-protocol exchange (Parse/Bind/Describe/Execute, or a
// whole pipelined batch), or a simple Query ('Q'), which pgx uses for
// BEGIN, COMMIT and statements without arguments.

// Request codes of the untyped messages that another untyped one follows.
const (
	pgSSLRequest    = 80877103
	pgGSSENCRequest = 80877104
)

// pgFrames parses a frontend byte stream fed to it in arbitrary chunks.
type pgFrames struct {
	started bool    // the startup message has been read
	hdr     [5]byte // the header being read: type byte (when started) and length
	hdrN    int
	untyped []byte // the payload of an untyped message being read (its code matters)
	skip    int64  // payload bytes of the current message still to pass
	inBody  bool

	syncs, queries, messages int64
}

// feed parses p, counting the messages it completes.
func (f *pgFrames) feed(p []byte) error {
	for len(p) > 0 {
		if f.inBody {
			n := min(int64(len(p)), f.skip)
			if !f.started && len(f.untyped) < 4 {
				take := min(int(n), 4-len(f.untyped))
				f.untyped = append(f.untyped, p[:take]...)
			}
			f.skip -= n
			p = p[n:]
			if f.skip == 0 {
				f.endMessage()
			}
			continue
		}
		hdrLen := 5
		if !f.started {
			hdrLen = 4
		}
		n := copy(f.hdr[f.hdrN:hdrLen], p)
		f.hdrN += n
		p = p[n:]
		if f.hdrN < hdrLen {
			return nil
		}
		length := int64(binary.BigEndian.Uint32(f.hdr[hdrLen-4 : hdrLen]))
		if length < 4 {
			return errors.New("pgwire: message length below 4")
		}
		f.skip = length - 4
		f.inBody = true
		if f.started {
			switch f.hdr[0] {
			case 'S':
				f.syncs++
			case 'Q':
				f.queries++
			}
		}
		if f.skip == 0 {
			f.endMessage()
		}
	}
	return nil
}

func (f *pgFrames) endMessage() {
	f.messages++
	if !f.started {
		code := uint32(0)
		if len(f.untyped) == 4 {
			code = binary.BigEndian.Uint32(f.untyped)
		}
		// After an SSL or GSS request the client sends another untyped
		// message (the startup message, once the server said no).
		if code != pgSSLRequest && code != pgGSSENCRequest {
			f.started = true
		}
		f.untyped = f.untyped[:0]
	}
	f.hdrN, f.inBody, f.skip = 0, false, 0
}

// pgProxy forwards TCP connections to a PostgreSQL server and counts the
// round trips of what the clients send.
type pgProxy struct {
	ln       net.Listener
	upstream string

	syncs, queries atomic.Int64
	errs           atomic.Int64 // streams that did not parse

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startPGProxy(upstream string) (*pgProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pgProxy{ln: ln, upstream: upstream}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

// roundTrips is the Syncs and simple Queries counted so far.
func (p *pgProxy) roundTrips() int64 { return p.syncs.Load() + p.queries.Load() }

func (p *pgProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() {
			// Server to client as is.
			_, _ = io.Copy(c, up)
			c.Close()
		})
		p.wg.Go(func() {
			p.pipe(up, c)
			up.Close()
		})
	}
}

// pipe copies client to server, counting as it goes.
func (p *pgProxy) pipe(dst io.Writer, src io.Reader) {
	var f pgFrames
	buf := make([]byte, 32*1024)
	parsing := true
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if parsing {
				s, q := f.syncs, f.queries
				if perr := f.feed(buf[:n]); perr != nil {
					p.errs.Add(1)
					parsing = false
				}
				p.syncs.Add(f.syncs - s)
				p.queries.Add(f.queries - q)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *pgProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
