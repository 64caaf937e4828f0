package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// refStack is the stack decoded by encoding/json, as it was before
// stackdecode.go: the reference the hand-written decoder must agree with.
type refStack struct {
	Stack
	LastActivityLegacy lenientTime `json:"last_activity"`
}

func (w *refStack) stack() Stack {
	s := w.Stack
	s.LastActivity = orElse(s.LastActivity, w.LastActivityLegacy)
	return s
}

func refDecodeList(data []byte) ([]Stack, Pagination, error) {
	ws, p, err := decodeEnvelope[[]refStack](data)
	if err != nil {
		return nil, Pagination{}, err
	}
	out := make([]Stack, len(ws))
	for i := range ws {
		out[i] = ws[i].stack()
	}
	return out, p, nil
}

func refDecodeOne(data []byte) (Stack, error) {
	w, _, err := decodeEnvelope[refStack](data)
	if err != nil {
		return Stack{}, err
	}
	return w.stack(), nil
}

// stackDecoderSeeds are envelopes where the two decoders could part: each
// rule of encoding/json the hand-written one copies.
var stackDecoderSeeds = []string{
	`{"response":[` + stackJSON + `],"pagination":{"previous":null,"next":2,"current":1,"per_page":30,"count":31,"pages":2}}`,
	`{"response":[{"uid":"a","UID":"b","Name":"n","ſtatus":2,"ſtatuſ":3,"health":1,"hEaLtH":4,"Maintenance_Mode":true}]}`,
	`{"response":[{"uid":"a","name":"x"}],"response":[{"uid":"b"}]}`,
	`{"response":[{"uid":"a","name":"x"},{"uid":"c"}],"response":[],"response":[{"uid":"b"}]}`,
	`{"response":[{"uid":"a","name":"x"}],"response":null,"response":[{"uid":"b"}]}`,
	`{"response":[{"uid":"a","name":"x"},{"uid":"c","git":"g"}],"response":[null],"response":[{"uid":"b"},{"uid":"d"}]}`,
	`{"response":[null,{"uid":"a","name":null,"status":null,"maintenance_mode":null,"last_activity_iso":null}]}`,
	`{"response":[{"name":"caf\u00e9 \"x\" \ud83d\ude00","git":"a\/b","uid":"\u0061"}]}`,
	"{\"response\":[{\"name\":\"bad \xff utf8\",\"u\xffid\":\"x\"}]}",
	`{"response":[{"status":"1"}]}`,
	`{"response":[{"status":1.5}]}`,
	`{"response":[{"status":1e2}]}`,
	`{"response":[{"status":-0,"health":99999999999999999999}]}`,
	`{"response":[{"uid":5}]}`,
	`{"response":[{"maintenance_mode":"true"}]}`,
	`{"response":[{"last_activity_iso":5}]}`,
	`{"response":[{"last_activity_iso":"2020-01-02T03:04:05Z","last_activity_iso":null,"last_activity":"2020-01-02 03:04:05 UTC"}]}`,
	`{"response":[{"last_activity":{"a":[1,2,{"b":null}]},"redeploy_hook":"https://hooks.cloud66.com/x"}]}`,
	`{"response":[5]}`,
	`{"response":{}}`,
	`{"response":[{}],"pagination":5}`,
	`{"response":[{}],"pagination":{"prev":3,"next":4},"pagination":null}`,
	`{"response":[{}],"pagination":{"prev":3},"pagination":{"next":4}}`,
	`{"Response":[{"uid":"a"}],"PAGINATION":{"current":1}}`,
	`{"response":[{"uid":"a"}]} x`,
	`{"response":[{"uid":"a"}],}`,
	`{"response":[{"uid":"a" "name":"b"}]}`,
	`{"response":[{"x":01}]}`,
	`{"response":[{"x":-}]}`,
	`{"response":[{"x":1.}]}`,
	`{"response":[{"x":1e}]}`,
	`{"response":[{"x":"a\qb"}]}`,
	`{"response":[{"x":"a\u12"}]}`,
	"{\"response\":[{\"x\":\"tab\there\"}]}",
	`{"response":[{"x":tru}]}`,
	`{"response":[{"x":[1,]}]}`,
	`{"response":[{"x":[[[[[]]]]]}]}`,
	`null`, `[]`, `"x"`, ``, `  {"response":[]}  `, `{"response":[`, `{"response"`, `{`,
	`{"response":{"uid":"a","name":"x"},"response":{"git":"g"}}`,
	`{"response":{"uid":"a"},"response":null,"response":{"git":"g"}}`,
	`{"response":[{"uid":"a"}]}`,
}

// FuzzStackDecoderMatchesEncodingJSON holds the hand-written decoder to
// encoding/json's answer for every input: the same stacks, the same
// pagination, an error exactly when encoding/json gives one.
func FuzzStackDecoderMatchesEncodingJSON(f *testing.F) {
	for _, s := range stackDecoderSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"response":[` + strings.Repeat(`[`, maxNesting) + strings.Repeat(`]`, maxNesting) + `]}`))
	f.Add([]byte(`{"response":[` + strings.Repeat(`[`, maxNesting-2) + strings.Repeat(`]`, maxNesting-2) + `]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		checkStackDecoderAgrees(t, data)
	})
}

func checkStackDecoderAgrees(t *testing.T, data []byte) {
	t.Helper()
	orig := bytes.Clone(data)
	got, gotP, gotErr := decodeStackList(data)
	want, wantP, wantErr := refDecodeList(data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("list %q: error %v, encoding/json %v", data, gotErr, wantErr)
	}
	if gotErr == nil && (len(got) != len(want) || gotP != wantP) {
		t.Fatalf("list %q:\n got %+v %+v\nwant %+v %+v", data, got, gotP, want, wantP)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("list %q: stack %d\n got %+v\nwant %+v", data, i, got[i], want[i])
		}
	}
	one, oneErr := decodeStackOne(data)
	refOne, refErr := refDecodeOne(data)
	if (oneErr == nil) != (refErr == nil) || one != refOne {
		t.Fatalf("one %q:\n got %+v, %v\nwant %+v, %v", data, one, oneErr, refOne, refErr)
	}
	if !bytes.Equal(data, orig) {
		t.Fatal("the decoder changed its input")
	}
}

func TestStackDecoderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range stackDecoderSeeds {
		checkStackDecoderAgrees(t, []byte(s))
	}
	deep := `{"response":[{"x":` + strings.Repeat(`[`, maxNesting) + strings.Repeat(`]`, maxNesting) + `}]}`
	if _, _, err := decodeStackList([]byte(deep)); err == nil {
		t.Error("nesting past encoding/json's limit accepted")
	}
}

// The fields something reads are decoded, what nobody reads is not, and
// the decoded strings hold nothing of the input beyond their own bytes.
func TestDecodeStackListFields(t *testing.T) {
	t.Parallel()
	data := []byte(`{"response":[` + stackJSON + `,{"uid":"b","name":"Shop","environment":"staging","git":null,"status":2,"health":4,"maintenance_mode":true,"last_activity":"2014-08-14 15:03:51 UTC"}],
		"pagination":{"previous":null,"next":2,"current":1,"per_page":30,"count":32,"pages":2}}`)
	stacks, p, err := decodeStackList(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stack{{
		UID: "5999b763474b0eafa5fafb64bff0ba80", Name: "Awesome App", Environment: "production",
		AccountName: "Acme", Git: "git://github.com/cloud66-samples/awesome-app.git", GitBranch: "fig",
		Cloud: "DigitalOcean", Language: "ruby", Framework: "rails", Backend: "kubernetes",
		Status: StatusDeployed, Health: HealthOK, LastActivity: mustTime(t, "2014-08-14T15:03:51Z"),
	}, {
		UID: "b", Name: "Shop", Environment: "staging", Status: StatusFailed, Health: HealthFailed,
		MaintenanceMode: true, LastActivity: mustTime(t, "2014-08-14T15:03:51Z"),
	}}
	if len(stacks) != len(want) {
		t.Fatalf("got %d stacks, want %d", len(stacks), len(want))
	}
	for i := range want {
		if !stacksEqual(stacks[i], want[i]) {
			t.Errorf("stack %d =\n%+v\nwant\n%+v", i, stacks[i], want[i])
		}
	}
	if p != (Pagination{Next: 2, Current: 1, PerPage: 30, Count: 32, Pages: 2}) {
		t.Errorf("pagination = %+v", p)
	}
	if dump := strings.Join([]string{stacks[0].UID, stacks[0].Name, stacks[0].Git, stacks[0].Backend}, ""); strings.Contains(dump, "SECRET-HOOK") {
		t.Errorf("redeploy_hook reached a string: %s", dump)
	}
}

// A list drops the stacks whose uid is no Cloud 66 id, and keeps the rest
// in order.
func TestListStacksDropsInvalidUIDs(t *testing.T) {
	t.Parallel()
	var dropped []string
	c, api := setup(t)
	c.invalidIDHook = func(e *InvalidIDError) { dropped = append(dropped, e.Value) }
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"response":[{"uid":"a1"},{"uid":"x|<!channel>"},null,{"uid":"a\u0020b"},{"uid":"b2"}],
			"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":5,"pages":1}}`)
	})
	stacks, err := c.ListStacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 2 || stacks[0].UID != "a1" || stacks[1].UID != "b2" {
		t.Errorf("stacks = %+v, want a1 and b2", stacks)
	}
	if len(dropped) != 3 || dropped[0] != "x|<!channel>" || dropped[1] != "" || dropped[2] != "a b" {
		t.Errorf("dropped %q", dropped)
	}
}

func mustTime(t *testing.T, s string) Time {
	t.Helper()
	var v Time
	if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
