package cloud66

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const stackJSON = `{
	"uid": "5999b763474b0eafa5fafb64bff0ba80",
	"name": "Awesome App",
	"git": "git://github.com/cloud66-samples/awesome-app.git",
	"git_branch": "fig",
	"environment": "production",
	"cloud": "DigitalOcean",
	"fqdn": "awesome-app.dev.c66.me",
	"language": "ruby",
	"framework": "rails",
	"status": 1,
	"health": 3,
	"last_activity": "2014-08-14 15:03:51 UTC",
	"last_activity_iso": "2014-08-14T15:03:51Z",
	"maintenance_mode": false,
	"has_loadbalancer": true,
	"created_at": "2014-08-14 14:11:23 UTC",
	"updated_at": "2014-08-14 15:03:51 UTC",
	"created_at_iso": "2014-08-14T14:11:23.000+00:00",
	"updated_at_iso": "2014-08-14T15:03:51Z",
	"deploy_directory": "/var/deploy/awesome_app",
	"cloud_status": "partial",
	"redeploy_hook": "https://hooks.cloud66.com/stacks/redeploy/SECRET-HOOK/abc",
	"account_id": 4655,
	"account_name": "Acme",
	"backend": "kubernetes",
	"version": "2.0",
	"is_busy": true,
	"namespaces": ["default"]
}`

func TestGetStack(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks/5999b763474b0eafa5fafb64bff0ba80.json", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "Accept", "application/json")
		writeJSON(w, 200, `{"response":`+stackJSON+`}`)
	})
	s, err := c.GetStack(context.Background(), "5999b763474b0eafa5fafb64bff0ba80")
	if err != nil {
		t.Fatal(err)
	}
	want := Stack{
		UID: "5999b763474b0eafa5fafb64bff0ba80", Name: "Awesome App", Environment: "production",
		AccountName: "Acme", Git: "git://github.com/cloud66-samples/awesome-app.git", GitBranch: "fig",
		Cloud: "DigitalOcean", Language: "ruby", Framework: "rails", Backend: "kubernetes",
		Status: StatusDeployed, Health: HealthOK,
		LastActivity: Time{time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)},
	}
	if !stacksEqual(*s, want) {
		t.Errorf("stack =\n%+v\nwant\n%+v", *s, want)
	}
	// The redeploy hook is a secret and must never be held.
	b, _ := json.Marshal(s)
	if dump := fmt.Sprintf("%+v %s", *s, b); strings.Contains(dump, "SECRET-HOOK") || strings.Contains(dump, "redeploy_hook") {
		t.Errorf("redeploy_hook was decoded: %s", dump)
	}
	if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != "/stacks/{uid}" || infos[0].Method != "GET" || infos[0].StatusCode != 200 {
		t.Errorf("hook = %+v", infos)
	}
}

func stacksEqual(a, b Stack) bool {
	times := a.LastActivity.Equal(b.LastActivity.Time)
	a.LastActivity, b.LastActivity = Time{}, Time{}
	return times && a == b
}

func TestListStacksSinglePage(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("page"); got != "1" {
			t.Errorf("page = %q, want 1", got)
		}
		writeJSON(w, 200, `{"response":[`+stackJSON+`,{"uid":"b","git":null,"git_branch":null,"status":6,"health":1}],"count":2,
			"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":2,"pages":1}}`)
	})
	stacks, err := c.ListStacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 2 || stacks[1].UID != "b" || stacks[1].Status != StatusDeploying || stacks[1].Health != HealthBuilding || stacks[1].Git != "" {
		t.Errorf("stacks = %+v", stacks)
	}
}

func TestStackTimestampFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     time.Time
	}{
		{"iso only", `{"last_activity_iso":"2020-01-02T03:04:05Z"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"legacy only", `{"last_activity":"2020-01-02 03:04:05 UTC"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"iso null uses legacy", `{"last_activity_iso":null,"last_activity":"2020-01-02 03:04:05 UTC"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"iso empty uses legacy", `{"last_activity":"2020-01-02 03:04:05 UTC","last_activity_iso":""}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"iso wins", `{"last_activity_iso":"2021-01-01T00:00:00Z","last_activity":"2020-01-02 03:04:05 UTC"}`, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"iso with offset and fraction", `{"last_activity_iso":"2021-01-01T02:00:00.500+02:00"}`, time.Date(2021, 1, 1, 0, 0, 0, 5e8, time.UTC)},
		{"unparsable legacy ignored", `{"last_activity":"last tuesday"}`, time.Time{}},
		{"legacy of another type ignored", `{"last_activity":7}`, time.Time{}},
		{"other timestamps not read", `{"created_at_iso":"garbage","updated_at":7}`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, env := range []string{`{"response":[` + tt.in + `]}`, `{"response":` + tt.in + `}`} {
				var s Stack
				var err error
				if strings.HasPrefix(env, `{"response":[`) {
					var list []Stack
					list, _, err = decodeStackList([]byte(env))
					if err == nil {
						s = list[0]
					}
				} else {
					s, err = decodeStackOne([]byte(env))
				}
				if err != nil {
					t.Fatal(err)
				}
				if !s.LastActivity.Equal(tt.want) {
					t.Errorf("%s: LastActivity = %v, want %v", env, s.LastActivity, tt.want)
				}
			}
		})
	}
	if _, err := decodeStackOne([]byte(`{"response":{"last_activity_iso":"garbage"}}`)); err == nil {
		t.Error("unparsable *_iso accepted silently")
	}
}

func TestStackRoundTrip(t *testing.T) {
	t.Parallel()
	in := Stack{UID: "u", Name: "n", Status: StatusFailed, Health: HealthFailed, LastActivity: Time{time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Stack
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !stacksEqual(in, out) {
		t.Errorf("round trip: %+v -> %s -> %+v", in, b, out)
	}
}

func TestStackStatusString(t *testing.T) {
	t.Parallel()
	tests := map[StackStatus]string{
		StatusQueued:             "Pending analysis",
		StatusDeployed:           "Deployed successfully",
		StatusFailed:             "Deployment failed",
		StatusAnalysing:          "Analyzing",
		StatusAnalysed:           "Analyzed",
		StatusQueuedForDeploying: "Queued for deployment",
		StatusDeploying:          "Deploying",
		StatusTerminalFailure:    "Unable to analyze",
		8:                        "Unknown (8)",
		-1:                       "Unknown (-1)",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("StackStatus(%d) = %q, want %q", int(s), got, want)
		}
	}
}

func TestHealthString(t *testing.T) {
	t.Parallel()
	tests := map[Health]string{
		HealthUnknown:  "Unknown",
		HealthBuilding: "Building",
		HealthImpaired: "Impaired",
		HealthOK:       "Healthy",
		HealthFailed:   "Failed",
		5:              "Unknown (5)",
	}
	for h, want := range tests {
		if got := h.String(); got != want {
			t.Errorf("Health(%d) = %q, want %q", int(h), got, want)
		}
	}
}

func TestFindStacksSendsFiltersAndRechecksTheAnswer(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("filter_name") != "Shop" || q.Get("page") != "1" {
			t.Errorf("query = %v", q)
		}
		// A server that filters loosely: the caller must drop "shopping"
		// and, when an environment was asked for, the other environments.
		writeJSON(w, 200, `{"response":[
			{"uid":"a","name":"shop","environment":"production"},
			{"uid":"b","name":"SHOP","environment":"Staging"},
			{"uid":"c","name":"shopping","environment":"production"}],
			"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":3,"pages":1}}`)
	})
	tests := []struct {
		env  string
		want string
	}{
		{"", "[a b]"},
		{"staging", "[b]"},
		{"PRODUCTION", "[a]"},
		{"qa", "[]"},
	}
	for _, tt := range tests {
		stacks, err := c.FindStacks(context.Background(), "Shop", tt.env)
		if err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, s := range stacks {
			uids = append(uids, s.UID)
		}
		if got := fmt.Sprint(uids); got != tt.want {
			t.Errorf("FindStacks(Shop, %q) = %v, want %s", tt.env, uids, tt.want)
		}
	}
	if infos := hook.all(); len(infos) != len(tests) || infos[0].Endpoint != "/stacks" {
		t.Errorf("hook = %+v, want %d requests to /stacks", infos, len(tests))
	}
}

func TestFindStacksEnvironmentParameter(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	var got []string
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		got = append(got, fmt.Sprintf("%v/%q", q.Has("filter_environment"), q.Get("filter_environment")))
		writeJSON(w, 200, `{"response":[],"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":0,"pages":1}}`)
	})
	if _, err := c.FindStacks(context.Background(), "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindStacks(context.Background(), "shop", "qa"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != `[false/"" true/"qa"]` {
		t.Errorf("filter_environment sent as %v; want it only when asked for", got)
	}
}

// A server that ignores the undocumented filters answers with every stack:
// FindStacks must walk all the pages, filter on every one, and still find
// only exact matches.
func TestFindStacksServerIgnoresFilters(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	const total = 65
	name := func(i int) (string, string) {
		switch i {
		case 3:
			return "shop", "production"
		case 40:
			return "Shop", "staging"
		case 64:
			return "shop", "qa"
		}
		if i%2 == 0 {
			return "shopping", "production"
		}
		return fmt.Sprintf("app%d", i), "production"
	}
	var pages []string
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("filter_name") != "SHOP" || q.Get("filter_environment") != "" {
			t.Errorf("page %s: query = %v (the filter must be sent on every page)", q.Get("page"), q)
		}
		pages = append(pages, q.Get("page"))
		page := 1
		fmt.Sscan(q.Get("page"), &page)
		var items []string
		for i := (page - 1) * PageSize; i < min(page*PageSize, total); i++ {
			n, e := name(i)
			items = append(items, fmt.Sprintf(`{"uid":"u%d","name":%q,"environment":%q}`, i, n, e))
		}
		next := "null"
		if page*PageSize < total {
			next = fmt.Sprint(page + 1)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"response":[%s],"pagination":{"previous":null,"next":%s,"current":%d,"per_page":30,"count":%d,"pages":3}}`,
			strings.Join(items, ","), next, page, total))
	})
	stacks, err := c.FindStacks(context.Background(), "SHOP", "")
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, s := range stacks {
		uids = append(uids, s.UID)
	}
	if fmt.Sprint(uids) != "[u3 u40 u64]" {
		t.Errorf("found %v, want [u3 u40 u64]", uids)
	}
	if fmt.Sprint(pages) != "[1 2 3]" {
		t.Errorf("pages = %v, want [1 2 3]", pages)
	}
}

func TestFindStacksErrors(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	c, api := setup(t)
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 503, `{"error":"throttled","error_description":"slow down"}`)
	})
	for _, name := range []string{"", "  "} {
		_, err := c.FindStacks(context.Background(), name, "production")
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("FindStacks(%q) = %v, want *ArgError", name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("an empty name reached the server (%d requests)", n)
	}
	stacks, err := c.FindStacks(context.Background(), "shop", "")
	if !errors.Is(err, ErrThrottled) || stacks != nil {
		t.Errorf("FindStacks on 503 = %v, %v; want ErrThrottled", stacks, err)
	}
}

// The prefetched pages are in flight together: page 1 is answered only
// once page 2 has been asked for, which a client asking in turn would
// never see.
func TestListStacksPagesAsksAtOnce(t *testing.T) {
	t.Parallel()
	c, api := setup(t, WithRetry(0, 0))
	page2 := make(chan struct{})
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "1":
			select {
			case <-page2:
			case <-r.Context().Done():
				return
			}
			writeJSON(w, 200, `{"response":[{"uid":"a"}],"pagination":{"previous":null,"next":2,"current":1,"per_page":30,"count":2,"pages":2}}`)
		case "2":
			close(page2)
			writeJSON(w, 200, `{"response":[{"uid":"b"}],"pagination":{"previous":1,"next":null,"current":2,"per_page":30,"count":2,"pages":2}}`)
		default:
			t.Errorf("page %s asked for", r.URL.Query().Get("page"))
		}
	})
	stacks, pages, err := c.ListStacksPages(context.Background(), 2)
	if err != nil || len(stacks) != 2 || stacks[0].UID != "a" || stacks[1].UID != "b" || pages != 2 {
		t.Errorf("ListStacksPages = %+v, %d, %v", stacks, pages, err)
	}
}

// A prefetched page fails the listing only when the listing needs it.
func TestListStacksPagesErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		pages int // the list's real length
		fail  string
		ok    bool
	}{
		{"needed page fails", 2, "2", false},
		{"first page fails", 2, "1", false},
		{"surplus page fails", 1, "2", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t, WithRetry(0, 0))
			api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
				page := r.URL.Query().Get("page")
				if page == tt.fail {
					writeJSON(w, 500, `{"error":"boom"}`)
					return
				}
				next := "null"
				if page == "1" && tt.pages > 1 {
					next = "2"
				}
				writeJSON(w, 200, `{"response":[{"uid":"p`+page+`"}],"pagination":{"next":`+next+`,"current":`+page+`}}`)
			})
			stacks, _, err := c.ListStacksPages(context.Background(), 2)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (len(stacks) != 1 || stacks[0].UID != "p1") {
				t.Errorf("stacks = %+v, want p1 only", stacks)
			}
		})
	}
}

// A server whose pagination points before page 1 ends in an error, not
// a panic, whether the pages were prefetched or not.
func TestListStacksPagesBogusPagination(t *testing.T) {
	t.Parallel()
	c, api := setup(t, WithRetry(0, 0))
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":[{"uid":"a"}],"pagination":{"next":0,"current":-3}}`)
	})
	for _, hint := range []int{0, 2} {
		if _, _, err := c.ListStacksPages(context.Background(), hint); err == nil {
			t.Errorf("hint %d: no error for a next page of 0", hint)
		}
	}
}

// Response buffers are reused: nothing decoded may point into one. A
// second answer overwrites the buffer the first was read into; the first
// stacks must not change.
func TestDecodedStacksOutliveTheirBuffer(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	n := 0
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		n++
		name := strings.Repeat(fmt.Sprint(n), 40)
		writeJSON(w, 200, `{"response":[{"uid":"a`+fmt.Sprint(n)+`","name":"`+name+`","environment":"e\u00e9","git":"g\"x"}],"pagination":{"current":1}}`)
	})
	first, err := c.ListStacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := first[0]
	want.Name = strings.Clone(want.Name)
	for range 5 {
		if _, err := c.ListStacks(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if first[0] != want || first[0].Name != strings.Repeat("1", 40) || first[0].Environment != "eé" || first[0].Git != `g"x` {
		t.Errorf("first answer changed: %+v", first[0])
	}
}

func TestBodyPoolDropsHugeBuffers(t *testing.T) {
	t.Parallel()
	p := &bodyPool{p: sync.Pool{New: func() any { return new(body) }}}
	b := p.get()
	b.Grow(maxPooledBody + 1)
	b.WriteString("secret")
	p.put(b)
	small := p.get()
	small.WriteString("x")
	p.put(small)
	if got := p.get(); got.Len() != 0 || got.Cap() > maxPooledBody {
		t.Errorf("pooled buffer: len %d cap %d", got.Len(), got.Cap())
	}
}
