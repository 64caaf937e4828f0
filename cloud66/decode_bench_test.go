package cloud66

import (
	"fmt"
	"strings"
	"testing"
)

// stackListPayload is a page of stacks shaped like Cloud 66's (and the
// fake's) answer, for measuring what decoding costs per command.
func stackListPayload(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"response":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":"%032x","name":"stack-%d","account_id":4711,"account_name":"Acme","git":"git@github.com:acme/stack-%d.git","git_branch":"main","environment":"production","cloud":"DigitalOcean","fqdn":"stack-%d.c66.me","language":"ruby","framework":"rails","status":1,"health":3,"last_activity":"2026-11-23 10:00:00 UTC","last_activity_iso":"2026-11-23T10:00:00Z","maintenance_mode":false,"has_loadbalancer":true,"created_at":"2024-01-02 03:04:05 UTC","updated_at":"2026-11-23 10:00:00 UTC","created_at_iso":"2024-01-02T03:04:05Z","updated_at_iso":"2026-11-23T10:00:00Z","deploy_directory":"/var/deploy","cloud_status":"healthy","redeploy_hook":"https://hooks.cloud66.com/stacks/redeploy/abc/def","backend":"","version":"1.0","revision":"abc","is_busy":false,"is_cluster":false}`, i, i, i, i)
	}
	fmt.Fprintf(&b, `],"count":%d,"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":%d,"pages":1}}`, n, n)
	return []byte(b.String())
}

// BenchmarkDecodeStackList is the CPU a `/c66 stacks` spends decoding one
// page of 30 stacks.
func BenchmarkDecodeStackList(b *testing.B) {
	data := stackListPayload(30)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeStackList(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStackListEncodingJSON is the same page through
// encoding/json (the reference decoder of the tests, fields as Stack has
// them now), for comparison.
func BenchmarkDecodeStackListEncodingJSON(b *testing.B) {
	data := stackListPayload(30)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := refDecodeList(data); err != nil {
			b.Fatal(err)
		}
	}
}
