package cloud66

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// FuzzDecodeEnvelope feeds arbitrary bytes to every decoder that sees
// server-controlled data: the envelope with each payload type, and the
// error-body decoding in checkResponse. It asserts no panic and a few
// invariants.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"response":[{"uid":"a","created_at":"2014-08-14 14:11:23 UTC"}],"count":1,"pagination":{"previous":null,"next":2,"current":1,"per_page":30,"count":31,"pages":2}}`))
	f.Add([]byte(`{"response":{"id":1,"resource_id":5,"finished_at":null,"finished_result":null,"metadata":{"user_reference":"x"}},"pagination":{"prev":3}}`))
	f.Add([]byte(`{"error":"throttled","error_description":"Request throttled","details":["a","b"]}`))
	f.Add([]byte(`<html>Service Unavailable</html>`))
	f.Add([]byte(`{"response":null}`))
	f.Add([]byte(`{"response":[{"uid":"abc|<!channel>","stack_uid":"x"},{"uid":"5999b763474b0eafa5fafb64bff0ba80"}]}`))
	f.Add([]byte(`{"response":[{"id":3,"services":[{"name":"web","image":"a/web:1"},"worker:2"],"outcome":{"meaning":"canceled by user"}}]}`))
	f.Add([]byte(`{"error":"insufficient_scope","error_description":"Access to this resource requires scope \"redeploy\".","scope":"redeploy"}`))
	f.Add([]byte(`Bearer realm="Doorkeeper", error="insufficient_scope", scope="a\"b, c"`))
	now := time.Date(2026, 1, 1, 12, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		_, p, err := decodeEnvelope[[]Stack](data)
		if err != nil && p != (Pagination{}) {
			t.Errorf("pagination %+v returned with error %v", p, err)
		}
		// What the list methods keep has valid ids, whatever came in.
		c := &Client{}
		if stacks, _, err := decodeStackList(data); err == nil {
			for _, st := range keepValid(c, http.MethodGet, "/stacks", stacks, stackIDError) {
				if !ValidUID(st.UID) {
					t.Errorf("stack uid %q kept", st.UID)
				}
			}
		}
		if servers, _, err := decodeEnvelope[[]Server](data); err == nil {
			for _, sv := range keepValid(c, http.MethodGet, "/stacks/{uid}/servers", servers, serverIDError) {
				if !ValidUID(sv.UID) || sv.StackUID != "" && !ValidUID(sv.StackUID) {
					t.Errorf("server uids %q, %q kept", sv.UID, sv.StackUID)
				}
			}
		}
		if ds, _, err := decodeEnvelope[[]Deployment](data); err == nil {
			for _, d := range ds {
				if slices.Contains(d.Services, "") {
					t.Errorf("empty service kept in %q", d.Services)
				}
				if n := btoi(d.Succeeded()) + btoi(d.Failed()) + btoi(d.Cancelled()); n > 1 {
					t.Errorf("outcome %q reads as %d outcomes", d.Outcome.Meaning, n)
				}
			}
		}
		if a, _, err := decodeEnvelope[AsyncAction](data); err == nil {
			_ = a.Finished()
			_ = a.UserReference()
			if _, err := json.Marshal(a); err != nil {
				t.Errorf("decoded action does not marshal: %v", err)
			}
		}
		_, _, _ = decodeEnvelope[RedeployResult](data)
		_, _, _ = decodeEnvelope[Result](data)

		for _, status := range []int{400, 403, 404, 429, 503} {
			resp := &http.Response{
				StatusCode: status,
				Header: http.Header{"Retry-After": {string(data[:min(len(data), 40)])},
					"Www-Authenticate": {string(data[:min(len(data), 200)])}},
				Body: io.NopCloser(bytes.NewReader(data)),
			}
			err := checkResponse(resp, http.MethodGet, "/stacks/{uid}", now)
			var er *ErrorResponse
			if !errors.As(err, &er) {
				t.Fatalf("status %d: got %v, want *ErrorResponse", status, err)
			}
			_ = er.Error()
			if er.Message() == "" {
				t.Errorf("status %d: empty Message()", status)
			}
			if errors.Is(err, ErrThrottled) == er.RetryAt.IsZero() {
				t.Errorf("status %d: throttled=%v but RetryAt=%v", status, errors.Is(err, ErrThrottled), er.RetryAt)
			}
			_ = IsTransient(err)
			scope, ok := er.InsufficientScope()
			if ok != errors.Is(err, ErrInsufficientScope) || ok && !errors.Is(err, ErrForbidden) || !ok && scope != "" {
				t.Errorf("status %d: InsufficientScope = %q, %v; Is(ErrInsufficientScope) %v", status, scope, ok, errors.Is(err, ErrInsufficientScope))
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
