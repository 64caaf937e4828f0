package cloud66test

import (
	"net/url"
	"testing"
)

// AddStack serves a stack exactly as given, hostile names and uid included,
// beside the seeded ones and through every read endpoint.
func TestAddStackServesItAsGiven(t *testing.T) {
	srv, _ := newServer(t)
	ana := srv.IssueToken("ana@example.com")
	ben := srv.IssueToken(seedBen)
	seeded := len(srv.Stacks())
	const (
		uid  = "x|<!channel> <https://evil.example|Open in Cloud 66>"
		name = "blog\n:white_check_mark: <!here>"
	)
	info := srv.AddStack(StackSpec{UID: uid, Name: name, Environment: "staging", Branch: "main\n<!here>",
		Servers: []string{"Lion <!channel>"}, DeployedBy: "<@U0BOSS>"})
	if info != (StackInfo{UID: uid, Name: name, Environment: "staging"}) {
		t.Fatalf("AddStack = %+v", info)
	}
	if got := srv.Stacks(); len(got) != seeded+1 || got[seeded] != info {
		t.Fatalf("Stacks() has %d, last %+v", len(got), got[len(got)-1])
	}

	// Listed after the seeded stacks, on the last page.
	r := call(t, srv, "GET", "/stacks.json?page=2", ana, nil)
	mustStatus(t, r, 200)
	var page []stackJSON
	r.into(t, &page)
	if last := page[len(page)-1]; last.UID != uid || last.Name != name || last.GitBranch == nil || *last.GitBranch != "main\n<!here>" {
		t.Fatalf("last stack listed: %+v", last)
	}
	// A uid with a '/' is listed but cannot be addressed (no client sends
	// one); the read endpoints are tried on one without.
	const uid2 = "abc|<!channel>&x"
	srv.AddStack(StackSpec{UID: uid2, Name: name, Environment: "qa", Branch: "main\n<!here>",
		Servers: []string{"Lion <!channel>"}, DeployedBy: "<@U0BOSS>"})
	seg := "/stacks/" + url.PathEscape(uid2)
	var st stackJSON
	r = call(t, srv, "GET", seg+".json", ana, nil)
	mustStatus(t, r, 200)
	r.into(t, &st)
	if st.UID != uid2 || st.Status != statusSuccess || st.Health != healthOK {
		t.Fatalf("GET the stack: %+v", st)
	}
	var servers []serverJSON
	r = call(t, srv, "GET", seg+"/servers.json", ana, nil)
	mustStatus(t, r, 200)
	r.into(t, &servers)
	if len(servers) != 1 || servers[0].Name != "Lion <!channel>" || servers[0].StackUID != uid2 || !hex32RE.MatchString(servers[0].UID) {
		t.Fatalf("servers: %+v", servers)
	}
	var deps []deploymentJSON
	r = call(t, srv, "GET", seg+"/deployments.json", ana, nil)
	mustStatus(t, r, 200)
	r.into(t, &deps)
	if len(deps) != 1 || deps[0].TriggeredBy != "<@U0BOSS>" || deps[0].GitRef == nil || *deps[0].GitRef != "main\n<!here>" || deps[0].Outcome.Meaning != "success" {
		t.Fatalf("deployments: %+v", deps)
	}
	// Only those who see every stack see it.
	mustStatus(t, call(t, srv, "GET", seg+".json", ben, nil), 404)

	// Without a uid, one is derived as for the seeded stacks.
	if plain := srv.AddStack(StackSpec{Name: "extra", Environment: "production"}); !hex32RE.MatchString(plain.UID) || srv.StackUID("extra", "production") != plain.UID {
		t.Fatalf("derived uid %q", plain.UID)
	}
}
