package cloud66

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const serverJSON = `{
	"uid": "f8468ba5cbf14d19ad2e25e0ea9e3fbc",
	"vendor_uid": "2115312",
	"name": "Lion",
	"address": "162.243.201.164",
	"distro": "ubuntu",
	"distro_version": "12.04",
	"dns_record": "lion.awesome-app.dev.c66.me",
	"user_name": "root",
	"server_type": "rails",
	"server_roles": ["rails", "web", "app"],
	"server_group_id": 12,
	"stack_uid": "5999b763474b0eafa5fafb64bff0ba80",
	"has_agent": true,
	"params": {"region": "ams2", "size": "66"},
	"created_at": "2014-08-14T14:11:23Z",
	"updated_at": "2014-08-14T15:03:51Z",
	"region": "ams2",
	"availability_zone": "ams2a",
	"ext_ipv4": "162.243.201.164",
	"int_ipv4": "10.0.0.2",
	"health_state": 2,
	"ssh_private_key": "-----BEGIN RSA PRIVATE KEY-----SECRETKEY"
}`

func TestGetServer(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks/st1/servers/f8468ba5cbf14d19ad2e25e0ea9e3fbc.json", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q; the private key must never be requested", r.URL.RawQuery)
		}
		writeJSON(w, 200, `{"response":`+serverJSON+`}`)
	})
	s, err := c.GetServer(context.Background(), "st1", "f8468ba5cbf14d19ad2e25e0ea9e3fbc")
	if err != nil {
		t.Fatal(err)
	}
	if s.UID != "f8468ba5cbf14d19ad2e25e0ea9e3fbc" || s.Name != "Lion" || s.Address != "162.243.201.164" ||
		s.DNSRecord != "lion.awesome-app.dev.c66.me" || s.ServerType != "rails" || s.Distro != "ubuntu" ||
		s.DistroVersion != "12.04" || s.Region != "ams2" || s.AvailabilityZone != "ams2a" ||
		s.ExtIPv4 != "162.243.201.164" || s.IntIPv4 != "10.0.0.2" || s.StackUID != "5999b763474b0eafa5fafb64bff0ba80" ||
		s.VendorUID != "2115312" || strings.Join(s.Roles, ",") != "rails,web,app" || s.ServerGroupID != 12 ||
		!s.HasAgent || s.Health != HealthImpaired {
		t.Errorf("server = %+v", *s)
	}
	if !s.CreatedAt.Equal(time.Date(2014, 8, 14, 14, 11, 23, 0, time.UTC)) || !s.UpdatedAt.Equal(time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)) {
		t.Errorf("times = %v, %v", s.CreatedAt, s.UpdatedAt)
	}
	if strings.Contains(fmt.Sprintf("%+v", *s), "SECRETKEY") {
		t.Error("ssh_private_key was decoded")
	}
	if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != "/stacks/{uid}/servers/{server_uid}" {
		t.Errorf("hook = %+v", infos)
	}
}

func TestServerISOTimestampsPreferred(t *testing.T) {
	t.Parallel()
	s, _, err := decodeEnvelope[Server]([]byte(`{"response":{"created_at":"2014-01-01 00:00:00 UTC","created_at_iso":"2015-01-01T00:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.CreatedAt.Year() != 2015 {
		t.Errorf("CreatedAt = %v, want the *_iso value", s.CreatedAt)
	}
}

func TestListServers(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks/st1/servers.json", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "1":
			writeJSON(w, 200, `{"response":[`+serverJSON+`],"count":2,"pagination":{"previous":null,"next":2,"current":1,"per_page":1,"count":2,"pages":2}}`)
		case "2":
			writeJSON(w, 200, `{"response":[{"uid":"second","health_state":4}],"count":2,"pagination":{"previous":1,"next":null,"current":2,"per_page":1,"count":2,"pages":2}}`)
		default:
			t.Errorf("unexpected page %q", r.URL.Query().Get("page"))
		}
	})
	servers, err := c.ListServers(context.Background(), "st1")
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 || servers[0].Name != "Lion" || servers[1].UID != "second" || servers[1].Health != HealthFailed {
		t.Errorf("servers = %+v", servers)
	}
}
