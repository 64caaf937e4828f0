package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// sitePrefix puts the fake site under a path, as go-github does, so a
	// request built from an absolute path instead of the base URL fails.
	sitePrefix = "/site"
	testToken  = "test-token-s3cr3t"
)

// setup starts a fake Cloud 66 for one test and returns a client for it and
// the mux serving the API root (register paths like "GET /stacks.json").
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	api := http.NewServeMux()
	site := http.NewServeMux()
	site.Handle(sitePrefix+"/api/3/", http.StripPrefix(sitePrefix+"/api/3", api))
	site.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the API root: %s %s", r.Method, r.URL.Path)
		http.Error(w, "outside API root", http.StatusTeapot)
	})
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	base := []Option{
		WithBaseURL(srv.URL + sitePrefix),
		WithHTTPClient(srv.Client()),
		WithToken(testToken),
		WithRetry(3, time.Millisecond),
	}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, api
}

// hookRecorder collects RequestInfo from WithRequestHook.
type hookRecorder struct {
	mu    sync.Mutex
	infos []RequestInfo
}

func (h *hookRecorder) record(ri RequestInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.infos = append(h.infos, ri)
}

func (h *hookRecorder) all() []RequestInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]RequestInfo(nil), h.infos...)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if r.Method != want {
		t.Errorf("method = %s, want %s", r.Method, want)
	}
}

func testHeader(t *testing.T, r *http.Request, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

// testJSONBody compares the request body with want as JSON values.
func testJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	var got, exp any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	gb, _ := json.Marshal(got)
	eb, _ := json.Marshal(exp)
	if !bytes.Equal(gb, eb) {
		t.Errorf("body = %s, want %s", gb, eb)
	}
}

func TestNewClientDefaults(t *testing.T) {
	t.Parallel()
	c, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.apiRoot.String(), "https://app.cloud66.com/api/3/"; got != want {
		t.Errorf("api root = %q, want %q", got, want)
	}
	if c.userAgent != "c66bot" {
		t.Errorf("user agent = %q", c.userAgent)
	}
	if c.httpClient.Timeout != 30*time.Second {
		t.Errorf("timeout = %v", c.httpClient.Timeout)
	}
	if c.maxRetries != 3 || c.retryBase != 200*time.Millisecond {
		t.Errorf("retry = %d, %v", c.maxRetries, c.retryBase)
	}
	if c.token != "" {
		t.Errorf("token set by default")
	}
}

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opt      Option
		wantRoot string // checked when non-empty
		wantArg  bool
	}{
		{name: "https", opt: WithBaseURL("https://c66.example"), wantRoot: "https://c66.example/api/3/"},
		{name: "http trailing slash", opt: WithBaseURL("http://127.0.0.1:8080/"), wantRoot: "http://127.0.0.1:8080/api/3/"},
		{name: "path prefix", opt: WithBaseURL("https://proxy.example/c66"), wantRoot: "https://proxy.example/c66/api/3/"},
		{name: "api root given", opt: WithBaseURL("https://app.cloud66.com/api/3/"), wantRoot: "https://app.cloud66.com/api/3/"},
		{name: "ftp", opt: WithBaseURL("ftp://c66.example"), wantArg: true},
		{name: "no scheme", opt: WithBaseURL("app.cloud66.com"), wantArg: true},
		{name: "empty", opt: WithBaseURL(""), wantArg: true},
		{name: "javascript", opt: WithBaseURL("javascript:alert(1)"), wantArg: true},
		{name: "credentials", opt: WithBaseURL("https://u:p@c66.example"), wantArg: true},
		{name: "query", opt: WithBaseURL("https://c66.example?x=1"), wantArg: true},
		{name: "unparsable", opt: WithBaseURL("https://[::1"), wantArg: true},
		{name: "nil http client", opt: WithHTTPClient(nil), wantArg: true},
		{name: "empty token", opt: WithToken(""), wantArg: true},
		{name: "token with newline", opt: WithToken("abc\r\nX-Evil: 1"), wantArg: true},
		{name: "empty user agent", opt: WithUserAgent(""), wantArg: true},
		{name: "negative retries", opt: WithRetry(-1, time.Second), wantArg: true},
		{name: "negative delay", opt: WithRetry(1, -time.Second), wantArg: true},
		{name: "zero retries", opt: WithRetry(0, 0)},
		{name: "nil hook", opt: WithRequestHook(nil)},
		{name: "nil option", opt: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tt.opt)
			var ae *ArgError
			if tt.wantArg {
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want *ArgError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantRoot != "" && c.apiRoot.String() != tt.wantRoot {
				t.Errorf("api root = %q, want %q", c.apiRoot, tt.wantRoot)
			}
		})
	}
}

func TestRequestHeadersAndEscaping(t *testing.T) {
	t.Parallel()
	c, api := setup(t, WithUserAgent("c66bot/test"))
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testHeader(t, r, "Accept", "application/json")
		testHeader(t, r, "User-Agent", "c66bot/test")
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "Content-Type", "")
		if got, want := r.URL.EscapedPath(), "/stacks/a%20b%3Fc%23d.json"; got != want {
			t.Errorf("path = %q, want %q", got, want)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q, want none", r.URL.RawQuery)
		}
		writeJSON(w, 200, `{"response":{"uid":"5999b763474b0eafa5fafb64bff0ba80"}}`)
	})
	s, err := c.GetStack(context.Background(), "a b?c#d")
	if err != nil {
		t.Fatal(err)
	}
	if s.UID != "5999b763474b0eafa5fafb64bff0ba80" {
		t.Errorf("uid = %q", s.UID)
	}
}

// TestArgErrorsSendNothing checks that every method validates its arguments
// before any I/O.
func TestArgErrorsSendNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	longRef := strings.Repeat("x", 256)
	tests := []struct {
		name string
		call func(c *Client) error
	}{
		{"GetStack empty", func(c *Client) error { _, err := c.GetStack(ctx, ""); return err }},
		{"GetStack slash", func(c *Client) error { _, err := c.GetStack(ctx, "a/b"); return err }},
		{"GetStack dotdot", func(c *Client) error { _, err := c.GetStack(ctx, ".."); return err }},
		{"GetStack embedded dotdot", func(c *Client) error { _, err := c.GetStack(ctx, "a..b"); return err }},
		{"ListServers empty", func(c *Client) error { _, err := c.ListServers(ctx, ""); return err }},
		{"GetServer empty server", func(c *Client) error { _, err := c.GetServer(ctx, "s", ""); return err }},
		{"GetServer slash stack", func(c *Client) error { _, err := c.GetServer(ctx, "s/x", "v"); return err }},
		{"ListDeployments empty", func(c *Client) error { _, err := c.ListDeployments(ctx, ""); return err }},
		{"ListDeploymentsPage empty", func(c *Client) error { _, _, err := c.ListDeploymentsPage(ctx, "", 1); return err }},
		{"GetDeployment zero", func(c *Client) error { _, err := c.GetDeployment(ctx, "s", 0); return err }},
		{"GetDeployment negative", func(c *Client) error { _, err := c.GetDeployment(ctx, "s", -4); return err }},
		{"Redeploy empty", func(c *Client) error { _, err := c.Redeploy(ctx, "", RedeployRequest{}); return err }},
		{"Redeploy long reference", func(c *Client) error {
			_, err := c.Redeploy(ctx, "s", RedeployRequest{UserReference: longRef})
			return err
		}},
		{"CancelDeployment zero", func(c *Client) error { _, err := c.CancelDeployment(ctx, "s", 0); return err }},
		{"CancelDeployment dotdot", func(c *Client) error { _, err := c.CancelDeployment(ctx, "..", 1); return err }},
		{"GetAction zero", func(c *Client) error { _, err := c.GetAction(ctx, "s", 0); return err }},
		{"GetAction empty", func(c *Client) error { _, err := c.GetAction(ctx, "", 1); return err }},
		{"ListActions empty", func(c *Client) error { _, err := c.ListActions(ctx, ""); return err }},
		{"RunStackAction empty stack", func(c *Client) error {
			_, err := c.RunStackAction(ctx, "", StackActionRequest{Command: CommandRestart})
			return err
		}},
		{"RunStackAction no command", func(c *Client) error { _, err := c.RunStackAction(ctx, "s", StackActionRequest{}); return err }},
		{"RunStackAction two words", func(c *Client) error {
			_, err := c.RunStackAction(ctx, "s", StackActionRequest{Command: "restart now"})
			return err
		}},
		{"RunStackAction service_restart without service", func(c *Client) error {
			_, err := c.RunStackAction(ctx, "s", StackActionRequest{Command: CommandServiceRestart, ServiceName: " "})
			return err
		}},
		{"RunStackAction maintenance without value", func(c *Client) error {
			_, err := c.RunStackAction(ctx, "s", StackActionRequest{Command: CommandMaintenanceMode})
			return err
		}},
		{"RunStackAction maintenance value 2", func(c *Client) error {
			_, err := c.RunStackAction(ctx, "s", StackActionRequest{Command: CommandMaintenanceMode, Value: new(2)})
			return err
		}},
		{"RebootServer empty server", func(c *Client) error { _, err := c.RebootServer(ctx, "s", ""); return err }},
		{"RebootServer dotdot stack", func(c *Client) error { _, err := c.RebootServer(ctx, "..", "v"); return err }},
		{"RebootServers empty stack", func(c *Client) error {
			_, err := c.RebootServers(ctx, "", RebootRequest{Group: "web"})
			return err
		}},
		{"RebootServers no group", func(c *Client) error { _, err := c.RebootServers(ctx, "s", RebootRequest{}); return err }},
		{"RebootServers bad strategy", func(c *Client) error {
			_, err := c.RebootServers(ctx, "s", RebootRequest{Group: "web", Strategy: "rolling"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			var hook hookRecorder
			c, api := setup(t, WithRequestHook(hook.record))
			api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeJSON(w, 200, `{"response":{}}`)
			})
			err := tt.call(c)
			var ae *ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *ArgError", err)
			}
			if !strings.HasPrefix(ae.Error(), "cloud66: invalid argument ") {
				t.Errorf("Error() = %q", ae.Error())
			}
			if IsTransient(err) {
				t.Error("ArgError reported transient")
			}
			if hits.Load() != 0 || len(hook.all()) != 0 {
				t.Errorf("request sent: %d hits, %d hook calls", hits.Load(), len(hook.all()))
			}
		})
	}
}

// pageHandler serves a list of total items over 30-item pages, naming the
// previous-page field prevKey.
func pageHandler(t *testing.T, total int, prevKey string, pages *[]int, mu *sync.Mutex) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		page, err := strconv.Atoi(r.URL.Query().Get("page"))
		if err != nil {
			t.Errorf("page param %q: %v", r.URL.Query().Get("page"), err)
			page = 1
		}
		mu.Lock()
		*pages = append(*pages, page)
		mu.Unlock()
		npages := (total + PageSize - 1) / PageSize
		var items []string
		for i := (page - 1) * PageSize; i < min(page*PageSize, total); i++ {
			items = append(items, fmt.Sprintf(`{"uid":"u%d","id":%d}`, i, i+1))
		}
		prev, next := "null", "null"
		if page > 1 {
			prev = strconv.Itoa(page - 1)
		}
		if page < npages {
			next = strconv.Itoa(page + 1)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"response":[%s],"count":%d,"pagination":{%q:%s,"next":%s,"current":%d,"per_page":30,"count":%d,"pages":%d}}`,
			strings.Join(items, ","), total, prevKey, prev, next, page, total, npages))
	}
}

func TestListPaginationAllPages(t *testing.T) {
	t.Parallel()
	type lister func(c *Client) (int, []string, error)
	ctx := context.Background()
	methods := []struct {
		name, pattern string
		list          lister
	}{
		{"ListStacks", "GET /stacks.json", func(c *Client) (int, []string, error) {
			s, err := c.ListStacks(ctx)
			var ids []string
			for _, x := range s {
				ids = append(ids, x.UID)
			}
			return len(s), ids, err
		}},
		{"ListServers", "GET /stacks/st1/servers.json", func(c *Client) (int, []string, error) {
			s, err := c.ListServers(ctx, "st1")
			var ids []string
			for _, x := range s {
				ids = append(ids, x.UID)
			}
			return len(s), ids, err
		}},
		{"ListDeployments", "GET /stacks/st1/deployments.json", func(c *Client) (int, []string, error) {
			d, err := c.ListDeployments(ctx, "st1")
			var ids []string
			for _, x := range d {
				ids = append(ids, "u"+strconv.FormatInt(x.ID-1, 10))
			}
			return len(d), ids, err
		}},
	}
	for _, m := range methods {
		for _, prevKey := range []string{"previous", "prev"} {
			t.Run(m.name+"/"+prevKey, func(t *testing.T) {
				t.Parallel()
				var (
					mu    sync.Mutex
					pages []int
					hook  hookRecorder
				)
				c, api := setup(t, WithRequestHook(hook.record))
				api.HandleFunc(m.pattern, pageHandler(t, 65, prevKey, &pages, &mu))
				n, ids, err := m.list(c)
				if err != nil {
					t.Fatal(err)
				}
				if n != 65 {
					t.Fatalf("got %d items, want 65", n)
				}
				for i, id := range ids {
					if want := "u" + strconv.Itoa(i); id != want {
						t.Fatalf("item %d = %q, want %q (order lost)", i, id, want)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if fmt.Sprint(pages) != "[1 2 3]" {
					t.Errorf("pages requested = %v, want [1 2 3]", pages)
				}
				for _, ri := range hook.all() {
					if strings.ContainsAny(ri.Endpoint, "?.") || strings.Contains(ri.Endpoint, "st1") {
						t.Errorf("hook endpoint %q leaks query, suffix or id", ri.Endpoint)
					}
				}
			})
		}
	}
}

func TestListDeploymentsPagePagination(t *testing.T) {
	t.Parallel()
	for _, prevKey := range []string{"previous", "prev"} {
		t.Run(prevKey, func(t *testing.T) {
			t.Parallel()
			var (
				mu    sync.Mutex
				pages []int
			)
			c, api := setup(t)
			api.HandleFunc("GET /stacks/st1/deployments.json", pageHandler(t, 65, prevKey, &pages, &mu))
			d, p, err := c.ListDeploymentsPage(context.Background(), "st1", 2)
			if err != nil {
				t.Fatal(err)
			}
			want := Pagination{Previous: 1, Next: 3, Current: 2, PerPage: 30, Count: 65, Pages: 3}
			if p != want {
				t.Errorf("pagination = %+v, want %+v", p, want)
			}
			if len(d) != 30 || d[0].ID != 31 {
				t.Errorf("got %d deployments starting at %d", len(d), d[0].ID)
			}
		})
	}
}

func TestPaginationLoopDetected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      func(page int) string
		wantHits  int32
		wantInErr string
	}{
		{
			name: "server ignores page",
			body: func(int) string {
				return `{"response":[{"uid":"x"}],"pagination":{"previous":null,"next":2,"current":1}}`
			},
			wantHits:  2,
			wantInErr: "pagination loop",
		},
		{
			name: "next points back",
			body: func(page int) string {
				next := map[int]int{1: 2, 2: 3, 3: 2}[page]
				return fmt.Sprintf(`{"response":[],"pagination":{"next":%d,"current":1}}`, next)
			},
			wantHits:  3,
			wantInErr: "pagination loop",
		},
		{
			name: "endless",
			body: func(page int) string {
				return fmt.Sprintf(`{"response":[],"pagination":{"next":%d,"current":%d}}`, page+1, page)
			},
			wantHits:  maxPages,
			wantInErr: "more than 1000 pages",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			c, api := setup(t)
			api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				page, _ := strconv.Atoi(r.URL.Query().Get("page"))
				writeJSON(w, 200, tt.body(page))
			})
			_, err := c.ListStacks(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantInErr)
			}
			if hits.Load() != tt.wantHits {
				t.Errorf("hits = %d, want %d", hits.Load(), tt.wantHits)
			}
		})
	}
}

func TestPaginationUnmarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Pagination
	}{
		{`{"previous":1,"next":3,"current":2,"per_page":30,"count":65,"pages":3}`, Pagination{1, 3, 2, 30, 65, 3}},
		{`{"prev":1,"next":3,"current":2,"count":65,"pages":3}`, Pagination{Previous: 1, Next: 3, Current: 2, Count: 65, Pages: 3}},
		{`{"previous":4,"prev":9}`, Pagination{Previous: 4}},
		{`{"previous":null,"prev":2}`, Pagination{Previous: 2}},
		{`{"previous":null,"next":null,"current":1,"per_page":30,"count":3,"pages":1}`, Pagination{Current: 1, PerPage: 30, Count: 3, Pages: 1}},
		{`{}`, Pagination{}},
	}
	for _, tt := range tests {
		var p Pagination
		if err := json.Unmarshal([]byte(tt.in), &p); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if p != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.in, p, tt.want)
		}
	}
	// Marshalling uses the name of the example responses.
	b, _ := json.Marshal(Pagination{Previous: 1})
	if !strings.Contains(string(b), `"previous":1`) {
		t.Errorf("marshal = %s", b)
	}
}

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr bool
		wantLen int
	}{
		{name: "list", in: `{"response":[{"uid":"a"},{"uid":"b"}],"count":2,"pagination":{"previous":null,"next":null,"current":1}}`, wantLen: 2},
		{name: "empty list", in: `{"response":[],"count":0}`, wantLen: 0},
		{name: "count disagrees", in: `{"response":[{"uid":"a"}],"count":30,"pagination":{"count":1}}`, wantLen: 1},
		{name: "missing response", in: `{"count":2}`, wantErr: true},
		{name: "null response", in: `{"response":null}`, wantErr: true},
		{name: "not an envelope", in: `[{"uid":"a"}]`, wantErr: true},
		{name: "invalid JSON", in: `{"response":[`, wantErr: true},
		{name: "wrong type", in: `{"response":{"uid":"a"}}`, wantErr: true},
		{name: "bad pagination", in: `{"response":[],"pagination":[]}`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := decodeEnvelope[[]Stack]([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && len(got) != tt.wantLen {
				t.Errorf("len = %d, want %d", len(got), tt.wantLen)
			}
		})
	}
}

func TestDecodeErrorIsReported(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks/s1.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `<html>maintenance</html>`)
	})
	_, err := c.GetStack(context.Background(), "s1")
	if err == nil || !strings.HasPrefix(err.Error(), "cloud66: GET /stacks/{uid}: decoding response") {
		t.Fatalf("err = %v", err)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	get := func(c *Client) error { _, err := c.GetStack(ctx, "s1"); return err }
	tests := []struct {
		name         string
		opts         []Option
		call         func(c *Client) error
		statuses     []int // served in order; the last repeats
		errBody      string
		wantAttempts int
		wantErr      bool
	}{
		{name: "GET 500 then success", call: get, statuses: []int{500, 500, 200}, wantAttempts: 3},
		{name: "GET 502 then success", call: get, statuses: []int{502, 200}, wantAttempts: 2},
		{name: "GET 408 then success", call: get, statuses: []int{408, 200}, wantAttempts: 2},
		{name: "GET 503 maintenance then success", call: get, statuses: []int{503, 200}, errBody: `{"error":"maintenance"}`, wantAttempts: 2},
		{name: "GET 500 gives up", call: get, statuses: []int{500}, wantAttempts: 4, wantErr: true},
		{name: "GET 500 retries disabled", opts: []Option{WithRetry(0, 0)}, call: get, statuses: []int{500}, wantAttempts: 1, wantErr: true},
		{name: "GET 404 not retried", call: get, statuses: []int{404}, wantAttempts: 1, wantErr: true},
		{name: "GET 401 not retried", call: get, statuses: []int{401}, wantAttempts: 1, wantErr: true},
		{name: "GET 409 not retried", call: get, statuses: []int{409}, wantAttempts: 1, wantErr: true},
		{name: "GET throttled not retried", call: get, statuses: []int{503}, errBody: `{"error":"throttled"}`, wantAttempts: 1, wantErr: true},
		{name: "GET 429 not retried", call: get, statuses: []int{429}, wantAttempts: 1, wantErr: true},
		{name: "GET 503 not_implemented not retried", call: get, statuses: []int{503}, errBody: `{"error":"not_implemented"}`, wantAttempts: 1, wantErr: true},
		{name: "POST 500 never retried", call: func(c *Client) error {
			_, err := c.Redeploy(ctx, "s1", RedeployRequest{})
			return err
		}, statuses: []int{500, 200}, wantAttempts: 1, wantErr: true},
		{name: "DELETE 500 never retried", call: func(c *Client) error {
			_, err := c.CancelDeployment(ctx, "s1", 7)
			return err
		}, statuses: []int{500, 200}, wantAttempts: 1, wantErr: true},
		{name: "stack action 500 never retried", call: func(c *Client) error {
			_, err := c.RunStackAction(ctx, "s1", StackActionRequest{Command: CommandRestart})
			return err
		}, statuses: []int{500, 200}, wantAttempts: 1, wantErr: true},
		{name: "server reboot 502 never retried", call: func(c *Client) error {
			_, err := c.RebootServer(ctx, "s1", "v1")
			return err
		}, statuses: []int{502, 200}, wantAttempts: 1, wantErr: true},
		{name: "group reboot 500 never retried", call: func(c *Client) error {
			_, err := c.RebootServers(ctx, "s1", RebootRequest{Group: "web"})
			return err
		}, statuses: []int{500, 200}, wantAttempts: 1, wantErr: true},
		{name: "ListActions 500 then success", call: func(c *Client) error {
			_, err := c.ListActions(ctx, "s1")
			return err
		}, statuses: []int{500, 200}, wantAttempts: 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				hits atomic.Int32
				hook hookRecorder
			)
			c, api := setup(t, append([]Option{WithRequestHook(hook.record)}, tt.opts...)...)
			api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1))
				status := tt.statuses[min(n, len(tt.statuses))-1]
				if status == 200 {
					writeJSON(w, 200, `{"response":{"uid":"s1","ok":true}}`)
					return
				}
				body := tt.errBody
				if body == "" {
					body = `{"error":"boom"}`
				}
				writeJSON(w, status, body)
			})
			err := tt.call(c)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got := int(hits.Load()); got != tt.wantAttempts {
				t.Errorf("server hits = %d, want %d", got, tt.wantAttempts)
			}
			infos := hook.all()
			if len(infos) != tt.wantAttempts {
				t.Fatalf("hook calls = %d, want %d", len(infos), tt.wantAttempts)
			}
			for i, ri := range infos {
				if ri.Attempt != i+1 {
					t.Errorf("hook %d: Attempt = %d", i, ri.Attempt)
				}
				if want := tt.statuses[min(i+1, len(tt.statuses))-1]; ri.StatusCode != want {
					t.Errorf("hook %d: StatusCode = %d, want %d", i, ri.StatusCode, want)
				}
				if ri.Duration <= 0 {
					t.Errorf("hook %d: Duration = %v", i, ri.Duration)
				}
			}
		})
	}
}

func TestRetryTransportError(t *testing.T) {
	t.Parallel()
	var (
		hits atomic.Int32
		hook hookRecorder
	)
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks/s1.json", func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			// Drop the connection without answering.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		writeJSON(w, 200, `{"response":{"uid":"s1"}}`)
	})
	s, err := c.GetStack(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if s.UID != "s1" {
		t.Errorf("uid = %q", s.UID)
	}
	infos := hook.all()
	if len(infos) < 2 || infos[0].StatusCode != 0 || infos[len(infos)-1].StatusCode != 200 {
		t.Errorf("hook = %+v, want a status-0 attempt then a 200", infos)
	}
}

func TestTransportErrorHidesURLAndToken(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	var hook hookRecorder
	c, err := NewClient(WithBaseURL(url), WithToken(testToken), WithRetry(2, time.Millisecond), WithRequestHook(hook.record))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListServers(context.Background(), "secret-stack-uid")
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, leak := range []string{testToken, "secret-stack-uid", "page=", "?"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q contains %q", msg, leak)
		}
	}
	if !strings.HasPrefix(msg, "cloud66: GET /stacks/{uid}/servers: ") {
		t.Errorf("error = %q", msg)
	}
	if !IsTransient(err) {
		t.Errorf("connection refused not transient: %v", err)
	}
	if n := len(hook.all()); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	for _, ri := range hook.all() {
		if ri.StatusCode != 0 || ri.Endpoint != "/stacks/{uid}/servers" {
			t.Errorf("hook = %+v", ri)
		}
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hits atomic.Int32
	// The hook runs after the failed attempt, just before the backoff wait.
	c, api := setup(t, WithRetry(3, 5*time.Second), WithRequestHook(func(RequestInfo) { cancel() }))
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 500, `{"error":"boom"}`)
	})
	start := time.Now()
	_, err := c.ListStacks(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err != context.Canceled {
		t.Errorf("err = %#v, want the bare ctx error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; backoff ignored cancellation", d)
	}
	if hits.Load() != 1 {
		t.Errorf("hits = %d, want 1", hits.Load())
	}
}

func TestContextErrorReturnedInsteadOfTransportError(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks/slow.json", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.GetStack(ctx, "slow")
	if err != context.DeadlineExceeded {
		t.Fatalf("err = %#v, want context.DeadlineExceeded", err)
	}

	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Ping(done); err != context.Canceled {
		t.Fatalf("err = %#v, want context.Canceled", err)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	exact := `{"response":{"uid":"s1"}}`
	exact += strings.Repeat(" ", maxBodySize-len(exact))
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string // substring; "" means success
	}{
		{name: "at limit", status: 200, body: exact},
		{name: "over limit", status: 200, body: exact + " ", wantErr: "exceeds 10485760 bytes"},
		{name: "error body over limit", status: 404, body: `{"error":"not_found","details":"` + strings.Repeat("x", maxErrorBodySize) + `"}`, wantErr: "404: Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			c, api := setup(t)
			api.HandleFunc("GET /stacks/s1.json", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeJSON(w, tt.status, tt.body)
			})
			s, err := c.GetStack(context.Background(), "s1")
			if tt.wantErr == "" {
				if err != nil || s.UID != "s1" {
					t.Fatalf("got %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if IsTransient(err) || hits.Load() != 1 {
				t.Errorf("transient=%v hits=%d; oversized bodies must not be retried", IsTransient(err), hits.Load())
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Client{retryBase: 200 * time.Millisecond}
	for attempt, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 3: 800 * time.Millisecond, 6: maxRetryDelay, 80: maxRetryDelay} {
		for range 50 {
			d := c.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := (&Client{}).backoff(1); d != 0 {
		t.Errorf("zero base: backoff = %v", d)
	}
	if d := (&Client{retryBase: time.Hour}).backoff(1); d > maxRetryDelay {
		t.Errorf("huge base not capped: %v", d)
	}
}
