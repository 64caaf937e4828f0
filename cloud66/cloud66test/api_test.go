package cloud66test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var (
	hex32RE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hex40RE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	legacyRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`)
	isoRE    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

type stackView struct {
	UID             string  `json:"uid"`
	Name            string  `json:"name"`
	Environment     string  `json:"environment"`
	AccountName     string  `json:"account_name"`
	Git             *string `json:"git"`
	Status          int     `json:"status"`
	Health          int     `json:"health"`
	IsBusy          bool    `json:"is_busy"`
	LastActivity    string  `json:"last_activity"`
	LastActivityISO string  `json:"last_activity_iso"`
	RedeployHook    string  `json:"redeploy_hook"`
}

func TestPing(t *testing.T) {
	srv, _ := newServer(t)
	r := call(t, srv, "GET", "/ping.json", "", nil)
	mustStatus(t, r, 200)
	var pong struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	r.into(t, &pong)
	if !pong.OK || pong.Message != "pong" {
		t.Fatalf("ping: %s", r.Raw)
	}
	mustStatus(t, call(t, srv, "GET", "/ping/auth.json", "", nil), 401)
	mustStatus(t, call(t, srv, "GET", "/ping/auth.json", srv.IssueToken("ana@example.com"), nil), 200)
}

func TestPagingOverAllStacks(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	seeded := srv.Stacks()
	if len(seeded) < 34 {
		t.Fatalf("only %d seeded stacks", len(seeded))
	}
	var all []stackView
	for page := 1; ; page++ {
		r := call(t, srv, "GET", fmt.Sprintf("/stacks.json?page=%d", page), tok, nil)
		mustStatus(t, r, 200)
		var got []stackView
		r.into(t, &got)
		p := r.Pagination
		if p == nil || p.Current != page || p.PerPage != 30 || p.Count != len(seeded) || *r.Count != len(seeded) {
			t.Fatalf("page %d pagination: %s", page, r.Raw[len(r.Raw)-150:])
		}
		if (page == 1) != (p.Previous == nil) {
			t.Fatalf("page %d: previous = %v", page, p.Previous)
		}
		all = append(all, got...)
		if p.Next == nil {
			if page != p.Pages || page < 2 {
				t.Fatalf("last page %d, pages %d", page, p.Pages)
			}
			break
		}
		if len(got) != 30 || *p.Next != page+1 {
			t.Fatalf("page %d: %d items, next %v", page, len(got), *p.Next)
		}
	}
	if len(all) != len(seeded) {
		t.Fatalf("paged %d stacks, seeded %d", len(all), len(seeded))
	}
	envs := map[string][]string{}
	for i, st := range all {
		if st.UID != seeded[i].UID || st.Name != seeded[i].Name || st.Environment != seeded[i].Environment {
			t.Fatalf("stack %d = %+v, want %+v", i, st, seeded[i])
		}
		if !hex32RE.MatchString(st.UID) || st.AccountName != "Acme" || !legacyRE.MatchString(st.LastActivity) ||
			!isoRE.MatchString(st.LastActivityISO) || !strings.HasPrefix(st.RedeployHook, "https://") {
			t.Fatalf("malformed stack %+v", st)
		}
		envs[st.Name] = append(envs[st.Name], st.Environment)
	}
	if got := strings.Join(envs["shop"], ","); got != "production,staging" {
		t.Fatalf("shop environments = %s", got)
	}

	past := call(t, srv, "GET", "/stacks.json?page=9", tok, nil)
	mustStatus(t, past, 200)
	if string(past.Response) != "[]" || past.Pagination.Next != nil || *past.Pagination.Previous != 8 {
		t.Fatalf("page past the end: %s", past.Raw)
	}
	for _, bad := range []string{"0", "-1", "abc"} {
		r := call(t, srv, "GET", "/stacks.json?page="+bad, tok, nil)
		if r.Status != 400 || r.Error != "bad_request" {
			t.Fatalf("page=%s: %d %s", bad, r.Status, r.Raw)
		}
	}
}

func TestStackFilters(t *testing.T) {
	srv, _ := newServer(t)
	ana, ben := srv.IssueToken("ana@example.com"), srv.IssueToken("ben@example.com")
	stagings := 0
	for _, st := range srv.Stacks() {
		if st.Environment == "staging" {
			stagings++
		}
	}
	tests := []struct {
		tok, query string
		want       string // name:environment, in listing order
	}{
		{ana, "filter_name=shop", "shop:production shop:staging"},
		{ana, "filter_name=SHOP", "shop:production shop:staging"},
		{ana, "filter_name=shop&filter_environment=Staging", "shop:staging"},
		{ana, "filter_name=shop&filter_environment=qa", ""},
		// Exact, not substring: "sho" and "shop " find nothing.
		{ana, "filter_name=sho", ""},
		{ana, "filter_name=shop+", ""},
		{ana, "filter_name=cdn-edge", "cdn-edge:production"},
		{ana, "filter_name=no-such-stack", ""},
		// The filters never widen what a person can see.
		{ben, "filter_name=shop", "shop:staging"},
		{ben, "filter_name=web", ""},
	}
	for _, tt := range tests {
		r := call(t, srv, "GET", "/stacks.json?"+tt.query, tt.tok, nil)
		mustStatus(t, r, 200)
		var got []stackView
		r.into(t, &got)
		var refs []string
		for _, st := range got {
			refs = append(refs, st.Name+":"+st.Environment)
		}
		if strings.Join(refs, " ") != tt.want {
			t.Errorf("%s: got %v, want %q", tt.query, refs, tt.want)
		}
		p := r.Pagination
		if p == nil || p.Count != len(got) || *r.Count != len(got) || p.Pages != 1 || p.Next != nil {
			t.Errorf("%s: pagination %s does not count the filtered list", tt.query, r.Raw[len(r.Raw)-120:])
		}
	}

	// filter_environment alone, and empty filters (which filter nothing).
	r := call(t, srv, "GET", "/stacks.json?filter_environment=STAGING", ana, nil)
	mustStatus(t, r, 200)
	if r.Pagination.Count != stagings {
		t.Errorf("filter_environment=STAGING: %d stacks, want %d", r.Pagination.Count, stagings)
	}
	r = call(t, srv, "GET", "/stacks.json?filter_name=&filter_environment=", ana, nil)
	mustStatus(t, r, 200)
	if r.Pagination.Count != len(srv.Stacks()) || r.Pagination.Pages != 2 {
		t.Errorf("empty filters: %d stacks in %d pages, want all %d", r.Pagination.Count, r.Pagination.Pages, len(srv.Stacks()))
	}
	// Filtered lists page like any other, and the filter is checked per page.
	r = call(t, srv, "GET", "/stacks.json?filter_name=shop&page=2", ana, nil)
	mustStatus(t, r, 200)
	if string(r.Response) != "[]" || r.Pagination.Count != 2 {
		t.Errorf("page 2 of a one-page filtered list: %s", r.Raw)
	}
}

func TestVisibility(t *testing.T) {
	srv, _ := newServer(t)
	ben := srv.IssueToken("ben@example.com")
	r := call(t, srv, "GET", "/stacks.json", ben, nil)
	mustStatus(t, r, 200)
	var got []stackView
	r.into(t, &got)
	if len(got) != 5 || r.Pagination.Next != nil {
		t.Fatalf("ben sees %d stacks", len(got))
	}
	for _, st := range got {
		if st.Environment != "staging" {
			t.Fatalf("ben sees %s/%s", st.Name, st.Environment)
		}
	}
	anaOnly := srv.StackUID("shop", "production")
	for _, path := range []string{
		"/stacks/" + anaOnly + ".json",
		"/stacks/" + anaOnly + "/servers.json",
		"/stacks/" + anaOnly + "/deployments.json",
	} {
		r := call(t, srv, "GET", path, ben, nil)
		if r.Status != 404 || r.Error != "not_found" {
			t.Fatalf("ben GET %s: %d %s", path, r.Status, r.Raw)
		}
	}
	r = call(t, srv, "POST", "/stacks/"+anaOnly+"/deployments.json", ben, nil)
	if r.Status != 404 {
		t.Fatalf("ben POST on hidden stack: %d", r.Status)
	}
	mustStatus(t, call(t, srv, "GET", "/stacks/"+srv.StackUID("shop", "staging")+".json", ben, nil), 200)

	nobody := srv.IssueToken("stranger@example.com")
	r = call(t, srv, "GET", "/stacks.json", nobody, nil)
	if r.Status != 200 || string(r.Response) != "[]" {
		t.Fatalf("unknown user: %s", r.Raw)
	}
}

func TestAuthAndRouting(t *testing.T) {
	srv, _ := newServer(t)
	ana := srv.IssueToken("ana@example.com")
	revoked := srv.IssueToken("ana@example.com")
	srv.Revoke(revoked)
	readOnly := srv.IssueToken("ana@example.com", "public")
	uid := srv.StackUID("blog", "staging")
	tests := []struct {
		name, method, path, token string
		status                    int
		errCode                   string
	}{
		{"no token", "GET", "/stacks.json", "", 401, "unauthenticated"},
		{"unknown token", "GET", "/stacks.json", "bogus", 401, "unauthenticated"},
		{"revoked token", "GET", "/stacks.json", revoked, 401, "unauthenticated"},
		{"read-only token reads", "GET", "/stacks/" + uid + ".json", readOnly, 200, ""},
		{"read-only token deploys", "POST", "/stacks/" + uid + "/deployments.json", readOnly, 403, "insufficient_scope"},
		{"read-only token cancels", "DELETE", "/stacks/" + uid + "/deployments/1.json", readOnly, 403, "insufficient_scope"},
		{"read-only token restarts", "POST", "/stacks/" + uid + "/actions.json", readOnly, 403, "insufficient_scope"},
		{"read-only token reboots a group", "POST", "/stacks/" + uid + "/reboot_servers.json", readOnly, 403, "insufficient_scope"},
		{"read-only token reboots a server", "POST", "/stacks/" + uid + "/servers/x/reboot_server.json", readOnly, 403, "insufficient_scope"},
		{"unknown stack", "GET", "/stacks/" + strings.Repeat("0", 32) + ".json", ana, 404, "not_found"},
		{"missing .json", "GET", "/stacks", ana, 404, "not_found"},
		{"unknown route", "GET", "/stacks/" + uid + "/widgets.json", ana, 404, "not_found"},
		{"wrong method", "PUT", "/stacks/" + uid + ".json", ana, 404, "not_found"},
		{"unknown server", "GET", "/stacks/" + uid + "/servers/nope.json", ana, 404, "not_found"},
		{"unknown deployment", "GET", "/stacks/" + uid + "/deployments/1.json", ana, 404, "not_found"},
		{"unknown action", "GET", "/stacks/" + uid + "/actions/1.json", ana, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, tc.method, tc.path, tc.token, nil)
			if r.Status != tc.status || r.Error != tc.errCode {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			if tc.errCode != "" && r.Description == "" {
				t.Fatalf("no error_description: %s", r.Raw)
			}
			if tc.status == 403 && (r.Description != `Access to this resource requires scope "redeploy".` ||
				!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) ||
				!strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="redeploy"`)) {
				t.Fatalf("403 should name the scope as Doorkeeper does: %s %q", r.Raw, r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestServers(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	for _, st := range srv.Stacks() {
		names := srv.ServerNames(st.UID)
		if len(names) < 1 || len(names) > 4 {
			t.Fatalf("%s/%s has %d servers", st.Name, st.Environment, len(names))
		}
	}
	uid := srv.StackUID("shop", "production")
	r := call(t, srv, "GET", "/stacks/"+uid+"/servers.json", tok, nil)
	mustStatus(t, r, 200)
	var servers []map[string]any
	r.into(t, &servers)
	names := srv.ServerNames(uid)
	if len(servers) != len(names) {
		t.Fatalf("%d servers listed, ServerNames has %d", len(servers), len(names))
	}
	for i, sv := range servers {
		if sv["name"] != names[i] || sv["stack_uid"] != uid {
			t.Fatalf("server %d: %v", i, sv)
		}
		if want := strings.ToLower(names[i]) + ".shop.production.c66.me"; sv["dns_record"] != want {
			t.Fatalf("dns_record %v, want %s", sv["dns_record"], want)
		}
		if roles, ok := sv["server_roles"].([]any); !ok || len(roles) == 0 {
			t.Fatalf("server_roles: %v", sv["server_roles"])
		}
		if _, ok := sv["ssh_private_key"]; ok {
			t.Fatal("ssh_private_key present without include_private_key=1")
		}
	}
	suid := servers[0]["uid"].(string)
	r = call(t, srv, "GET", "/stacks/"+uid+"/servers/"+suid+".json?include_private_key=1", tok, nil)
	mustStatus(t, r, 200)
	var one map[string]any
	r.into(t, &one)
	if k, _ := one["ssh_private_key"].(string); k == "" {
		t.Fatalf("no ssh_private_key with include_private_key=1: %s", r.Raw)
	}
}

func TestDeploymentHistory(t *testing.T) {
	srv, _ := newServer(t)
	tok := srv.IssueToken("ana@example.com")
	uid := srv.StackUID("api", "production")
	var all []map[string]any
	for page := 1; page <= 3; page++ {
		r := call(t, srv, "GET", fmt.Sprintf("/stacks/%s/deployments.json?page=%d", uid, page), tok, nil)
		mustStatus(t, r, 200)
		var got []map[string]any
		r.into(t, &got)
		all = append(all, got...)
		if r.Pagination.Next == nil {
			break
		}
	}
	if len(all) <= 30 {
		t.Fatalf("api/production has %d deployments, want > 30", len(all))
	}
	for i, d := range all {
		if i > 0 && d["started_at"].(string) > all[i-1]["started_at"].(string) {
			t.Fatalf("deployments not newest first at %d", i)
		}
		if !hex40RE.MatchString(d["git_hash"].(string)) || d["finished_at"] == nil || d["is_deploying"] != false {
			t.Fatalf("deployment %d: %v", i, d)
		}
		if (i == 0) != (d["is_head"] == true) {
			t.Fatalf("is_head wrong at %d", i)
		}
	}
	id := int(all[3]["id"].(float64))
	r := call(t, srv, "GET", fmt.Sprintf("/stacks/%s/deployments/%d.json", uid, id), tok, nil)
	mustStatus(t, r, 200)
	// A deployment of another stack is not found under this one.
	mustStatus(t, call(t, srv, "GET", fmt.Sprintf("/stacks/%s/deployments/%d.json", srv.StackUID("shop", "staging"), id), tok, nil), 404)
}

func TestSeedIsDeterministic(t *testing.T) {
	a, _ := newServer(t)
	b, _ := newServer(t)
	sa, sb := a.Stacks(), b.Stacks()
	for i := range sa {
		if sa[i] != sb[i] {
			t.Fatalf("stack %d differs: %v vs %v", i, sa[i], sb[i])
		}
	}
	ta, tb := a.IssueToken("ana@example.com"), b.IssueToken("ana@example.com")
	ra := call(t, a, "GET", "/stacks/"+sa[2].UID+"/deployments.json", ta, nil)
	rb := call(t, b, "GET", "/stacks/"+sb[2].UID+"/deployments.json", tb, nil)
	if string(ra.Raw) != string(rb.Raw) {
		t.Fatal("deployment histories differ between two servers on the same clock")
	}
}
