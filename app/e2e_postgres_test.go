package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// The whole bot on PostgreSQL (one replica): a person links their Cloud 66
// account through the browser, deploys production with a confirmation,
// and the card moves to Deployed; the token is sealed in the database;
// /readyz says when the database cannot be reached, and is ready again
// once it can.
func TestE2EOnPostgres(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, p.Host)
	p.Host = proxy.addr()
	h := startHarness(t, harnessOptions{databaseURL: p.String()})

	h.login("U0ANA")
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production@v2.1")
	mustContain(t, text(confirm), "needs your confirmation")
	_, ok := h.click("U0ANA", confirm, "deploy_confirm")
	mustContain(t, text(ok), "Confirmed")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 got %d deployments, want 1", n)
	}

	// Every row of every table, as text: the token is in none of them.
	tokens := h.tokensUsed()
	if len(tokens) == 0 {
		t.Fatal("no Cloud 66 token was used")
	}
	conn := pgtest.Conn(t, u)
	rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Err() != nil || len(tables) == 0 {
		t.Fatalf("tables: %v %v", tables, rows.Err())
	}
	for _, table := range tables {
		var dump string
		if err := conn.QueryRow(t.Context(), `SELECT coalesce(string_agg(t::text, ' '), '') FROM `+table+` t`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		for _, tok := range tokens {
			if strings.Contains(dump, tok) {
				t.Errorf("table %s holds a Cloud 66 token in plain text", table)
			}
		}
	}

	if status, checks := h.readyz(); status != http.StatusOK || checks["database"] != "ok" {
		t.Fatalf("/readyz on PostgreSQL: %d %v", status, checks)
	}
	proxy.setDown(true)
	waitUntil(t, 15*time.Second, "/readyz to say the database is unavailable", func() bool {
		status, checks := h.readyz()
		return status == http.StatusServiceUnavailable && checks["database"] == "unavailable" && checks["slack_socket"] == "ok"
	})
	proxy.setDown(false)
	waitUntil(t, 15*time.Second, "/readyz to be ready again", func() bool {
		status, checks := h.readyz()
		return status == http.StatusOK && checks["database"] == "ok"
	})
}

// proxy forwards TCP connections to a server until it is set down, when it
// cuts the open ones and refuses new ones: the database unreachable, as a
// network partition or a failover of PostgreSQL would make it.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
}

// track remembers c so setDown can cut it; false when the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}
