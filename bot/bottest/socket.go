package bottest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxAckSize mirrors Slack silently dropping Socket Mode responses of 20 KB or more.
const maxAckSize = 20 * 1024

var upgrader = websocket.Upgrader{
	// slack-go sends Origin: https://api.slack.com, which the default check refuses.
	CheckOrigin: func(*http.Request) bool { return true },
	// Slack does not reassemble fragmented frames; neither side should need to.
	WriteBufferSize: 32 * 1024,
	ReadBufferSize:  32 * 1024,
}

// wsConn is one Socket Mode connection.
type wsConn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex    // serialises data frame writes
	done chan struct{} // closed when the read loop has ended

	// guarded by Server.mu
	id       int
	ready    bool // hello has been written
	draining bool // sent a disconnect or being dropped: no new envelopes
}

func (c *wsConn) write(data []byte) error { return c.writeStamped(data, nil) }

// writeStamped writes data, first calling stamp (if not nil) once the
// write lock is held: the moment the frame starts on its way.
func (c *wsConn) writeStamped(data []byte, stamp func()) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if stamp != nil {
		stamp()
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *wsConn) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(b)
}

// close closes the TCP connection without a close frame. Safe to repeat.
func (c *wsConn) close() { _ = c.ws.Close() }

// closeWithFrame sends a close frame, then closes.
func (c *wsConn) closeWithFrame(code int, text string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.close()
}

type debugInfo struct {
	Host                      string `json:"host"`
	BuildNumber               int    `json:"build_number,omitempty"`
	ApproximateConnectionTime int    `json:"approximate_connection_time,omitempty"`
}

type helloFrame struct {
	Type           string    `json:"type"`
	NumConnections int       `json:"num_connections"`
	DebugInfo      debugInfo `json:"debug_info"`
	ConnectionInfo struct {
		AppID string `json:"app_id"`
	} `json:"connection_info"`
}

type disconnectFrame struct {
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	DebugInfo debugInfo `json:"debug_info"`
}

func connHost(id int) string { return fmt.Sprintf("applink-fake-%d", id) }

// handleLink upgrades /link/?ticket=… to a Socket Mode connection.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	if ticket == "" || !s.tickets[ticket] {
		s.mu.Unlock()
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	delete(s.tickets, ticket) // tickets are single use
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	s.serveConn(&wsConn{ws: ws, done: make(chan struct{})})
}

func (s *Server) serveConn(c *wsConn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	if len(s.conns) >= maxConnections {
		s.connSeq++
		id := s.connSeq
		s.mu.Unlock()
		_ = c.writeJSON(disconnectFrame{Type: "disconnect", Reason: "too_many_websockets", DebugInfo: debugInfo{Host: connHost(id)}})
		c.closeWithFrame(websocket.ClosePolicyViolation, "too_many_websockets")
		return
	}
	s.connSeq++
	c.id = s.connSeq
	s.conns[c] = struct{}{}
	hello := helloFrame{
		Type:           "hello",
		NumConnections: len(s.conns),
		DebugInfo:      debugInfo{Host: connHost(c.id), BuildNumber: 1, ApproximateConnectionTime: 18060},
	}
	hello.ConnectionInfo.AppID = s.AppID
	s.mu.Unlock()

	defer func() {
		close(c.done)
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.notifyLocked()
		s.mu.Unlock()
	}()

	if err := c.writeJSON(hello); err != nil {
		return
	}
	s.mu.Lock()
	c.ready = true
	s.notifyLocked()
	s.wg.Add(1) // the handler's own count keeps the WaitGroup above zero here
	s.mu.Unlock()
	go s.pingLoop(c)

	c.ws.SetReadLimit(1 << 20)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage {
			s.handleClientFrame(c.id, data)
		}
	}
}

// pingLoop sends a PING right after hello and then every ping interval.
func (s *Server) pingLoop(c *wsConn) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.pingInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		s.mu.Lock()
		off := s.noPings
		s.mu.Unlock()
		if !off {
			payload := []byte(fmt.Sprintf("ping-%d", n))
			if err := c.ws.WriteControl(websocket.PingMessage, payload, time.Now().Add(wsWriteTimeout)); err != nil {
				c.close()
				return
			}
		}
		select {
		case <-c.done:
			return
		case <-t.C:
		}
	}
}

// handleClientFrame records an ack ({"envelope_id":…,"payload":…}).
func (s *Server) handleClientFrame(conn int, data []byte) {
	if len(data) >= maxAckSize {
		return // Slack silently drops responses of 20 KB or more
	}
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
		return
	}
	read := time.Now()
	var payload json.RawMessage
	if len(a.Payload) > 0 && string(a.Payload) != "null" {
		payload = append(json.RawMessage(nil), a.Payload...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rec := ackRecord{Ack: Ack{EnvelopeID: a.EnvelopeID, Payload: payload, At: s.cfg.now(), Connection: conn}}
	e := s.envelopes[a.EnvelopeID]
	if e != nil {
		rec.Latency = read.Sub(s.epoch) - time.Duration(e.sentAt.Load())
		rec.attempt = e.attempt
	}
	s.acks = append(s.acks, rec)
	s.notifyLocked()

	if e == nil || e.typ != "slash_commands" || payload == nil {
		return
	}
	var reply struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if json.Unmarshal(payload, &reply) != nil {
		return
	}
	blocks, _, _ := parseBlocks(reply.Blocks)
	if reply.Text == "" && blocks == nil {
		return
	}
	s.recordMessageLocked(Message{
		Kind:         KindAck,
		Channel:      e.channel,
		User:         e.user,
		Text:         reply.Text,
		Blocks:       blocks,
		EnvelopeID:   e.id,
		ResponseType: reply.ResponseType,
	})
}

func (s *Server) liveConnsLocked() []*wsConn {
	var live []*wsConn
	for c := range s.conns {
		if c.ready && !c.draining {
			live = append(live, c)
		}
	}
	return live
}

// Connections is the number of open Socket Mode connections that can receive
// envelopes (hello sent; not disconnected or dropped).
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.liveConnsLocked())
}

// ConnectionsOpened is the number of successful apps.connections.open calls.
func (s *Server) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// WaitConnected waits until at least n connections can receive envelopes.
// Connections sent a disconnect or dropped do not count.
func (s *Server) WaitConnected(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.liveConnsLocked()) >= n })
}

// SendDisconnect sends {"type":"disconnect","reason":reason} on every open
// connection ("warning", "refresh_requested", "link_disabled", …). Those
// connections receive no further envelopes; with "link_disabled" the server
// also closes them. slack-go reacts to any disconnect by closing the socket
// and opening a new one (a new apps.connections.open call).
func (s *Server) SendDisconnect(reason string) {
	s.mu.Lock()
	var targets []*wsConn
	for c := range s.conns {
		if c.ready {
			c.draining = true
			targets = append(targets, c)
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	for _, c := range targets {
		_ = c.writeJSON(disconnectFrame{Type: "disconnect", Reason: reason, DebugInfo: debugInfo{Host: connHost(c.id)}})
		if reason == "link_disabled" {
			c.closeWithFrame(websocket.CloseNormalClosure, "link_disabled")
		}
	}
}

// DropConnections closes every connection's TCP stream without a close frame.
func (s *Server) DropConnections() {
	s.mu.Lock()
	var targets []*wsConn
	for c := range s.conns {
		c.draining = true
		targets = append(targets, c)
	}
	s.notifyLocked()
	s.mu.Unlock()
	for _, c := range targets {
		c.close()
	}
}

// StopPings stops WebSocket PINGs on every connection (old and new), so a
// client's ping watchdog (socketmode.OptionPingInterval) fires.
func (s *Server) StopPings() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noPings = true
}

// ResumePings undoes StopPings.
func (s *Server) ResumePings() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noPings = false
}

// pickConn waits for a live connection and returns a random one, or the
// one numbered want when want is not 0 (ErrConnectionGone once it has
// closed).
func (s *Server) pickConn(ctx context.Context, want int) (*wsConn, error) {
	var (
		picked *wsConn
		gone   bool
	)
	err := s.waitFor(ctx, func() bool {
		live := s.liveConnsLocked()
		if want != 0 {
			for _, c := range live {
				if c.id == want {
					picked = c
					return true
				}
			}
			gone = want <= s.connSeq
			return gone
		}
		if len(live) == 0 {
			return false
		}
		picked = live[rand.IntN(len(live))] // #nosec G404 -- load spreading, not security
		return true
	})
	if err == nil && gone {
		err = fmt.Errorf("%w: %d", ErrConnectionGone, want)
	}
	return picked, err
}

// ConnectionIDs lists the numbers of the connections that can receive
// envelopes, lowest first. Connections are numbered from 1 in the order
// they were opened, so with apps started one after the other, waiting for
// each to connect, the n-th app's socket is n (until it reconnects).
func (s *Server) ConnectionIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for _, c := range s.liveConnsLocked() {
		ids = append(ids, c.id)
	}
	slices.Sort(ids)
	return ids
}

// deliver writes an envelope on a random live connection, waiting for one if
// needed and trying another one when a write fails.
func (s *Server) deliver(ctx context.Context, e *envelope) error {
	for {
		c, err := s.pickConn(ctx, e.conn)
		if err != nil {
			return err
		}
		s.mu.Lock()
		frame, err := e.frame()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		stamp := func() { e.sentAt.Store(int64(time.Since(s.epoch))) }
		if c.writeStamped(frame, stamp) == nil {
			return nil
		}
		s.mu.Lock()
		c.draining = true
		s.notifyLocked()
		s.mu.Unlock()
		c.close()
	}
}
