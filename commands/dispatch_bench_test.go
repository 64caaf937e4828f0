package commands

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

func benchStacks() []cloud66.Stack {
	var stacks []cloud66.Stack
	for i := range 36 {
		stacks = append(stacks, cloud66.Stack{UID: fmt.Sprintf("%032x", i), Name: fmt.Sprintf("stack-%d", i), Environment: "production",
			AccountName: "Acme", Status: cloud66.StatusDeployed, Health: cloud66.HealthOK})
	}
	return stacks
}

// BenchmarkDispatchStacks is the bot's own work for `/c66 stacks` once
// Cloud 66 has answered: matching, sorting, rendering Block Kit, logging.
func BenchmarkDispatchStacks(b *testing.B) {
	t := &testing.T{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: benchStacks()})
	req := ana
	req.Text = "stacks"
	b.ReportAllocs()
	for b.Loop() {
		r.Dispatch(b.Context(), req)
	}
}

// cloud66Pages is Cloud 66's answer for 36 stacks: pages of 30 and 6, each
// stack with every field Cloud 66 sends.
func cloud66Pages() map[string][]byte {
	pages := map[string][]byte{}
	for page := 1; page <= 2; page++ {
		var b strings.Builder
		b.WriteString(`{"response":[`)
		for i := (page - 1) * 30; i < min(page*30, 36); i++ {
			if i%30 > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"uid":"%032x","name":"stack-%d","account_id":4711,"account_name":"Acme","git":"git@github.com:acme/stack-%d.git","git_branch":"main","environment":"production","cloud":"DigitalOcean","fqdn":"stack-%d.c66.me","language":"ruby","framework":"rails","status":1,"health":3,"last_activity":"2026-11-23 10:00:00 UTC","last_activity_iso":"2026-11-23T10:00:00Z","maintenance_mode":false,"has_loadbalancer":true,"created_at":"2024-01-02 03:04:05 UTC","updated_at":"2026-11-23 10:00:00 UTC","created_at_iso":"2024-01-02T03:04:05Z","updated_at_iso":"2026-11-23T10:00:00Z","deploy_directory":"/var/deploy","cloud_status":"healthy","redeploy_hook":"https://hooks.cloud66.com/stacks/redeploy/abc/def","backend":"","version":"1.0","revision":"abc","is_busy":false,"is_cluster":false}`, i, i, i, i)
		}
		next := "null"
		if page == 1 {
			next = "2"
		}
		fmt.Fprintf(&b, `],"count":36,"pagination":{"previous":null,"next":%s,"current":%d,"per_page":30,"count":36,"pages":2}}`, next, page)
		pages[fmt.Sprint(page)] = []byte(b.String())
	}
	return pages
}

// BenchmarkDispatchStacksHTTP is `/c66 stacks` with the real client over
// loopback HTTP to a server answering two canned pages: decoding included,
// and the page count of the last listing used (two requests at once). The
// figure includes the test server's own work, so it overstates the bot's.
func BenchmarkDispatchStacksHTTP(b *testing.B) {
	pages := cloud66Pages()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pages[r.URL.Query().Get("page")])
	}))
	b.Cleanup(srv.Close)
	api, err := cloud66.NewClient(cloud66.WithBaseURL(srv.URL), cloud66.WithHTTPClient(srv.Client()), cloud66.WithToken("t"))
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	r, _ := newTestRouter(t, true, &fakeCloud66{}, func(d *Deps) {
		d.Cloud66For = func(context.Context, storage.Identity) (Cloud66, error) { return api, nil }
	})
	req := ana
	req.Text = "stacks"
	if !strings.Contains(replyText(t, r.Dispatch(b.Context(), req)), "Stacks (36)") {
		b.Fatal("not 36 stacks")
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Dispatch(b.Context(), req)
	}
}
