package cloud66test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestThrottlePerToken(t *testing.T) {
	srv, _ := newServer(t)
	a, b := srv.IssueToken("ana@example.com"), srv.IssueToken("ana@example.com")
	clear := srv.Throttle(a)
	for range 3 {
		r := call(t, srv, "GET", "/stacks.json", a, nil)
		if r.Status != 503 || r.Error != "throttled" {
			t.Fatalf("throttled token: %d %s", r.Status, r.Raw)
		}
	}
	mustStatus(t, call(t, srv, "GET", "/stacks.json", b, nil), 200)
	mustStatus(t, call(t, srv, "GET", "/ping.json", "", nil), 200)
	clear()
	clear() // idempotent
	mustStatus(t, call(t, srv, "GET", "/stacks.json", a, nil), 200)
}

func TestFail5xxCountsDown(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	srv.Fail5xx(2)
	for i, want := range []int{500, 500, 200, 200} {
		if r := call(t, srv, "GET", "/stacks.json", tok, nil); r.Status != want {
			t.Fatalf("request %d: %d, want %d", i, r.Status, want)
		}
	}
	if n := srv.RequestCount("GET", "/api/3/stacks"); n != 4 {
		t.Fatalf("RequestCount = %d", n)
	}
	// A blanket API fault never touches OAuth.
	srv.Fail5xx(5)
	resp, _ := get(t, authorizeURL(srv, authorizeQuery(srv, callback, "")))
	if resp.StatusCode != 302 {
		t.Fatalf("authorize under API fault: %d", resp.StatusCode)
	}
	srv.ClearFaults()
	mustStatus(t, call(t, srv, "GET", "/stacks.json", tok, nil), 200)
}

func TestFaultMatchingAndShapes(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	uid := srv.StackUID("shop", "staging")
	srv.InjectFault(Fault{
		PathPrefix: "/api/3/stacks/" + uid + "/deployments", Method: "POST",
		Status: 409, Description: "Stack is busy", Times: 1, RetryAfter: "7",
	})
	mustStatus(t, call(t, srv, "GET", "/stacks/"+uid+"/deployments.json", tok, nil), 200)
	r := call(t, srv, "POST", "/stacks/"+uid+"/deployments.json", tok, nil)
	if r.Status != 409 || r.Error != "conflict" || r.Description != "Stack is busy" || r.Header.Get("Retry-After") != "7" {
		t.Fatalf("fault reply: %d %v %s", r.Status, r.Header, r.Raw)
	}
	mustStatus(t, call(t, srv, "POST", "/stacks/"+uid+"/deployments.json", tok, nil), 200)

	srv.InjectFault(Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>", Times: 1})
	req, _ := http.NewRequest("GET", srv.URL+"/api/3/stacks.json", nil)
	resp, body := send(t, req)
	if resp.StatusCode != 502 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Bad Gateway") {
		t.Fatalf("raw body fault: %d %s", resp.StatusCode, body)
	}

	// An explicit /oauth prefix reaches the token endpoint.
	srv.InjectFault(Fault{PathPrefix: "/oauth/token", Status: 500, Times: 1})
	if tr := exchange(t, srv, url.Values{"grant_type": {"authorization_code"}}, true, srv.ClientSecret); tr.Status != 500 {
		t.Fatalf("token endpoint fault: %d %s", tr.Status, tr.Raw)
	}
}

func TestLatencyFault(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	const lat = 150 * time.Millisecond
	srv.InjectFault(Fault{PathPrefix: "/api/3/stacks", Latency: lat, Times: 1})

	start := time.Now()
	mustStatus(t, call(t, srv, "GET", "/ping.json", "", nil), 200)
	if time.Since(start) >= lat {
		t.Fatal("latency applied outside its path prefix")
	}
	start = time.Now()
	mustStatus(t, call(t, srv, "GET", "/stacks.json", tok, nil), 200)
	if d := time.Since(start); d < lat {
		t.Fatalf("request took %v, want >= %v", d, lat)
	}
	start = time.Now()
	mustStatus(t, call(t, srv, "GET", "/stacks.json", tok, nil), 200)
	if time.Since(start) >= lat {
		t.Fatal("latency fault not used up after Times=1")
	}

	// Latency plus status: the status is answered after the delay.
	srv.InjectFault(Fault{Latency: 50 * time.Millisecond, Status: 503, Times: 1})
	start = time.Now()
	if r := call(t, srv, "GET", "/stacks.json", tok, nil); r.Status != 503 || r.Error != "throttled" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("latency+status: %d %s", r.Status, r.Raw)
	}
}

func TestCloseWakesStalledRequests(t *testing.T) {
	srv := New()
	srv.InjectFault(Fault{Latency: time.Minute})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(srv.URL + "/api/3/ping.json")
		if err == nil {
			resp.Body.Close()
		}
	}()
	// The request is stalled in the fake once it is recorded; the ticks
	// only poll for that, within a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for srv.RequestCount("", "/api/3/ping") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a stalled request")
	}
	<-done
	srv.Close() // idempotent
}

func TestRequestsRecorded(t *testing.T) {
	srv, clk := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	uid := srv.StackUID("blog", "staging")
	call(t, srv, "GET", "/stacks.json?page=1", tok, nil)
	clk.Advance(time.Minute)
	call(t, srv, "POST", "/stacks/"+uid+"/deployments.json", tok, url.Values{"git_ref": {"main"}})
	call(t, srv, "GET", "/stacks.json", "nope", nil)

	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	r0, r1, r2 := reqs[0], reqs[1], reqs[2]
	if r0.Method != "GET" || r0.Path != "/api/3/stacks.json" || r0.Query.Get("page") != "1" || r0.Token != tok ||
		r0.Status != 200 || !r0.At.Equal(t0) || r0.Header.Get("Accept") != "application/json" {
		t.Fatalf("request 0: %+v", r0)
	}
	if r1.Method != "POST" || r1.Form.Get("git_ref") != "main" || string(r1.Body) != "git_ref=main" || !r1.At.Equal(t0.Add(time.Minute)) || r1.Status != 200 {
		t.Fatalf("request 1: %+v", r1)
	}
	if r2.Status != 401 || r2.Token != "nope" {
		t.Fatalf("request 2: %+v", r2)
	}
	// Requests returns copies.
	reqs[0].Query.Set("page", "99")
	if srv.Requests()[0].Query.Get("page") != "1" {
		t.Fatal("Requests leaked internal state")
	}
	if n := srv.RequestCount("POST", "/api/3/stacks/"); n != 1 {
		t.Fatalf("RequestCount POST = %d", n)
	}
	if n := srv.RequestCount("", ""); n != 3 {
		t.Fatalf("RequestCount all = %d", n)
	}
	srv.ResetRequests()
	if len(srv.Requests()) != 0 {
		t.Fatal("ResetRequests did not clear")
	}
}

func TestClock(t *testing.T) {
	c := NewClock(t0)
	c.Advance(time.Hour)
	if !c.Now().Equal(t0.Add(time.Hour)) {
		t.Fatalf("frozen clock: %v", c.Now())
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Set: %v", c.Now())
	}

	var rc Clock
	if d := time.Since(rc.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("real clock off by %v", d)
	}
	rc.Advance(48 * time.Hour)
	if d := rc.Now().Sub(time.Now()); d < 47*time.Hour {
		t.Fatalf("advanced real clock only %v ahead", d)
	}
	rc.Set(t0)
	if d := rc.Now().Sub(t0); d < 0 || d > time.Second {
		t.Fatalf("Set real clock: %v", rc.Now())
	}

	srv := Start(t) // default clock is real time
	if d := time.Since(srv.Clock.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("default server clock off by %v", d)
	}
}
