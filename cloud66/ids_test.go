package cloud66

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestValidUID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uid  string
		want bool
	}{
		// Shapes Cloud 66 uses: 32 lowercase hex for stacks and servers,
		// UUIDs in webhook payloads; upper case and '_' are tolerated.
		{"5999b763474b0eafa5fafb64bff0ba80", true},
		{"f8468ba5cbf14d19ad2e25e0ea9e3fbc", true},
		{"550e8400-e29b-41d4-a716-446655440001", true},
		{"5999B763474B0EAFA5FAFB64BFF0BA80", true},
		{"stack_1", true},
		{strings.Repeat("a", MaxUIDLen), true},

		{"", false},
		{strings.Repeat("a", MaxUIDLen+1), false},
		{"abc|<!channel>", false},
		{"<!channel>", false},
		{"x|Open in Cloud 66><https://evil.example", false},
		{"a b", false},
		{"a/b", false},
		{"..", false},
		{"a.b", false},
		{"a\nb", false},
		{"a\x00", false},
		{"a&b", false},
		{"a%2Fb", false},
		{"a?b", false},
		{"a#b", false},
		{"é", false},
		{"ab\u2028", false},
	}
	for _, tt := range tests {
		if got := ValidUID(tt.uid); got != tt.want {
			t.Errorf("ValidUID(%q) = %v, want %v", tt.uid, got, tt.want)
		}
	}
}

// invalidIDs records what WithInvalidIDHook hears.
type invalidIDs struct {
	mu   sync.Mutex
	errs []*InvalidIDError
}

func (r *invalidIDs) hook(e *InvalidIDError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, e)
}

func (r *invalidIDs) all() []*InvalidIDError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*InvalidIDError(nil), r.errs...)
}

const (
	goodUID    = "5999b763474b0eafa5fafb64bff0ba80"
	hostileUID = `abc|<!channel> <https://evil.example|Open in Cloud 66>`
)

// A list with one hostile or broken item keeps the others; the dropped
// item is reported to the hook, with the id, and the id appears in no error
// string.
func TestListsDropItemsWithHostileIDs(t *testing.T) {
	t.Parallel()
	rec := &invalidIDs{}
	c, api := setup(t, WithInvalidIDHook(rec.hook))
	api.HandleFunc("/stacks.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":[
			{"uid":"`+goodUID+`","name":"shop","environment":"production"},
			{"uid":"abc|<!channel> <https://evil.example|Open in Cloud 66>","name":"shop","environment":"production"},
			{"uid":"","name":"shop","environment":"production"},
			{"uid":"../../users","name":"shop","environment":"production"},
			{"name":"shop","environment":"production"}],
			"pagination":{"previous":null,"next":null,"current":1}}`)
	})
	api.HandleFunc("/stacks/"+goodUID+"/servers.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":[
			{"uid":"f8468ba5cbf14d19ad2e25e0ea9e3fbc","name":"Lion","stack_uid":"`+goodUID+`"},
			{"uid":"0a1b2c3d","name":"Tiger"},
			{"uid":"srv\n<!here>","name":"Otter","stack_uid":"`+goodUID+`"},
			{"uid":"1a2b3c4d","name":"Heron","stack_uid":"x|<!channel>"}],
			"pagination":{"previous":null,"next":null,"current":1}}`)
	})
	ctx := context.Background()

	stacks, err := c.ListStacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 1 || stacks[0].UID != goodUID {
		t.Errorf("ListStacks = %+v, want only the stack with a real uid", stacks)
	}
	found, err := c.FindStacks(ctx, "shop", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].UID != goodUID {
		t.Errorf("FindStacks = %+v, want only the stack with a real uid", found)
	}
	servers, err := c.ListServers(ctx, goodUID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "Lion,Tiger" {
		t.Errorf("ListServers kept %s, want Lion,Tiger (a missing stack_uid is fine)", got)
	}

	errs := rec.all()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Endpoint+" "+e.Field)
		if !errors.Is(e, ErrInvalidID) {
			t.Errorf("%v does not match ErrInvalidID", e)
		}
		if e.Value != "" && strings.Contains(e.Error(), e.Value) {
			t.Errorf("error %q shows the id", e.Error())
		}
	}
	want := strings.Repeat("/stacks stack uid,", 8) + "/stacks/{uid}/servers server uid,/stacks/{uid}/servers server stack_uid"
	if got := strings.Join(fields, ","); got != want {
		t.Errorf("hook heard\n%s\nwant\n%s", got, want)
	}
	if errs[0].Value != hostileUID || errs[0].Method != "GET" {
		t.Errorf("first drop = %+v, want the hostile uid as received", errs[0])
	}
}

// A single object with a hostile id is an error that callers can tell apart.
func TestGetRefusesHostileIDs(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("/stacks/"+goodUID+".json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":{"uid":"abc|<!channel>","name":"shop"}}`)
	})
	api.HandleFunc("/stacks/"+goodUID+"/servers/f8468ba5cbf14d19ad2e25e0ea9e3fbc.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":{"uid":"f8468ba5cbf14d19ad2e25e0ea9e3fbc","stack_uid":"<https://evil.example|x>"}}`)
	})
	api.HandleFunc("/stacks/"+goodUID+"/servers/0a1b2c3d.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":{"uid":"a b"}}`)
	})
	ctx := context.Background()
	check := func(what string, err error, field string) {
		t.Helper()
		var ie *InvalidIDError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidID) {
			t.Fatalf("%s: %v, want an *InvalidIDError", what, err)
		}
		if ie.Field != field {
			t.Errorf("%s: field %q, want %q", what, ie.Field, field)
		}
		if strings.ContainsAny(err.Error(), "<>|") {
			t.Errorf("%s: error %q carries the id", what, err.Error())
		}
	}
	st, err := c.GetStack(ctx, goodUID)
	if st != nil {
		t.Errorf("GetStack returned %+v with the error", st)
	}
	check("GetStack", err, "stack uid")
	_, err = c.GetServer(ctx, goodUID, "f8468ba5cbf14d19ad2e25e0ea9e3fbc")
	check("GetServer stack_uid", err, "server stack_uid")
	_, err = c.GetServer(ctx, goodUID, "0a1b2c3d")
	check("GetServer uid", err, "server uid")
}

// Every method puts a uid argument into its request path escaped, so a uid
// can never add a segment, a query or a fragment.
func TestEveryPathEscapesUIDs(t *testing.T) {
	t.Parallel()
	const uid = "a b?c#d|<!channel>&e"
	const esc = "a%20b%3Fc%23d%7C%3C%21channel%3E&e"
	ctx := context.Background()
	tests := []struct {
		name, path string
		call       func(c *Client) error
		body       string
	}{
		{"GetStack", "/stacks/" + esc + ".json", func(c *Client) error { _, err := c.GetStack(ctx, uid); return err }, `{"response":{"uid":"x"}}`},
		{"ListServers", "/stacks/" + esc + "/servers.json", func(c *Client) error { _, err := c.ListServers(ctx, uid); return err }, `{"response":[]}`},
		{"GetServer", "/stacks/" + esc + "/servers/" + esc + ".json", func(c *Client) error { _, err := c.GetServer(ctx, uid, uid); return err }, `{"response":{"uid":"x"}}`},
		{"ListDeployments", "/stacks/" + esc + "/deployments.json", func(c *Client) error { _, err := c.ListDeployments(ctx, uid); return err }, `{"response":[]}`},
		{"ListDeploymentsPage", "/stacks/" + esc + "/deployments.json", func(c *Client) error { _, _, err := c.ListDeploymentsPage(ctx, uid, 1); return err }, `{"response":[]}`},
		{"GetDeployment", "/stacks/" + esc + "/deployments/7.json", func(c *Client) error { _, err := c.GetDeployment(ctx, uid, 7); return err }, `{"response":{"id":7}}`},
		{"Redeploy", "/stacks/" + esc + "/deployments.json", func(c *Client) error { _, err := c.Redeploy(ctx, uid, RedeployRequest{}); return err }, `{"response":{"ok":true}}`},
		{"CancelDeployment", "/stacks/" + esc + "/deployments/7.json", func(c *Client) error { _, err := c.CancelDeployment(ctx, uid, 7); return err }, `{"response":{"ok":true}}`},
		{"GetAction", "/stacks/" + esc + "/actions/9.json", func(c *Client) error { _, err := c.GetAction(ctx, uid, 9); return err }, `{"response":{"id":9}}`},
		{"ListActionsByReference", "/stacks/" + esc + "/actions.json", func(c *Client) error { _, err := c.ListActionsByReference(ctx, uid, "r"); return err }, `{"response":[]}`},
		{"ListActions", "/stacks/" + esc + "/actions.json", func(c *Client) error { _, err := c.ListActions(ctx, uid); return err }, `{"response":[]}`},
		{"RunStackAction", "/stacks/" + esc + "/actions.json", func(c *Client) error {
			_, err := c.RunStackAction(ctx, uid, StackActionRequest{Command: CommandRestart})
			return err
		}, `{"response":{"id":9}}`},
		{"RebootServer", "/stacks/" + esc + "/servers/" + esc + "/reboot_server.json", func(c *Client) error { _, err := c.RebootServer(ctx, uid, uid); return err }, `{"response":{"id":9}}`},
		{"RebootServers", "/stacks/" + esc + "/reboot_servers.json", func(c *Client) error {
			_, err := c.RebootServers(ctx, uid, RebootRequest{Group: "web"})
			return err
		}, `{"response":{"id":9}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t)
			paths := make(chan string, 1)
			api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				paths <- r.URL.EscapedPath()
				writeJSON(w, 200, tt.body)
			})
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if got := <-paths; got != tt.path {
				t.Errorf("path = %q, want %q", got, tt.path)
			}
		})
	}
}
