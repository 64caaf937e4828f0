package commands

import (
	"testing"

	"github.com/c66bot/c66bot/cloud66"
)

// `server` finds a server by name, uid, IP address or host name, and shows
// its region and its zone apart.
func TestServerByAddressWithRegionAndZone(t *testing.T) {
	t.Parallel()
	c66 := &fakeCloud66{stacks: testStacks(), servers: map[string][]cloud66.Server{
		"uid-api": {
			{UID: "s1", Name: "lion", Health: cloud66.HealthOK, Address: "203.0.113.10", ExtIPv4: "203.0.113.10", IntIPv4: "10.0.0.10",
				DNSRecord: "lion.api.c66.me", Region: "us-east-1", AvailabilityZone: "us-east-1a"},
			{UID: "s2", Name: "tiger", Health: cloud66.HealthOK, Address: "203.0.113.11", ExtIPv4: "203.0.113.11", IntIPv4: "10.0.0.11",
				DNSRecord: "tiger.api.c66.me", Region: "ams3", AvailabilityZone: "ams3"},
		},
	}}
	r, _ := newTestRouter(t, true, c66)
	for _, tt := range []struct {
		text          string
		want, notWant []string
	}{
		{"server api lion", []string{"lion · api:production", "*Region*\\nus-east-1\"", "*Zone*\\nus-east-1a"}, []string{"us-east-1 us-east-1a"}},
		{"server api s1", []string{"lion · api:production"}, nil},
		{"server api 203.0.113.11", []string{"tiger · api:production", "*Region*\\nams3", "*Zone*\\n—"}, nil},
		{"server api 10.0.0.10", []string{"lion · api:production"}, nil},
		{"server api TIGER.api.c66.me", []string{"tiger · api:production"}, nil},
		{"server api 10.0.0.99", []string{"can't find a server called `10.0.0.99` in api:production"}, nil},
	} {
		req := ana
		req.Text = tt.text
		hasAll(t, replyText(t, r.Dispatch(t.Context(), req)), tt.want, tt.notWant)
	}
}
