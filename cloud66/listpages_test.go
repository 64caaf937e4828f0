package cloud66_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

func fakeClient(t *testing.T) (*cloud66.Client, *cloud66test.Server) {
	t.Helper()
	srv := cloud66test.Start(t)
	c, err := cloud66.NewClient(cloud66.WithBaseURL(srv.URL), cloud66.WithToken(srv.IssueToken("ana@example.com")), cloud66.WithRetry(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func stackPages(srv *cloud66test.Server) []string {
	var pages []string
	for _, r := range srv.Requests() {
		if r.Path == "/api/3/stacks.json" {
			pages = append(pages, r.Query.Get("page"))
		}
	}
	return pages
}

func uids(stacks []cloud66.Stack) []string {
	var out []string
	for _, s := range stacks {
		out = append(out, s.UID)
	}
	return out
}

// Against the fake's 36 stacks (30 + 6): a cold listing asks for page 1,
// learns there is a page 2, asks for it; one told there were 2 pages asks
// for both and gets the same stacks in the same order; one whose list grew
// past the hint fetches what is missing; one that overestimates drops
// the surplus.
func TestListStacksPagesAgainstFake(t *testing.T) {
	t.Parallel()
	c, srv := fakeClient(t)
	ctx := context.Background()

	cold, pages, err := c.ListStacksPages(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cold) != 36 || pages != 2 {
		t.Fatalf("cold: %d stacks over %d pages, want 36 over 2", len(cold), pages)
	}
	if got := stackPages(srv); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("cold asked for pages %v, want [1 2] in turn", got)
	}
	if plain, err := c.ListStacks(ctx); err != nil || !slices.Equal(uids(plain), uids(cold)) {
		t.Fatalf("ListStacks = %v, %v; want what ListStacksPages gave", uids(plain), err)
	}

	srv.ResetRequests()
	warm, pages, err := c.ListStacksPages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(uids(warm), uids(cold)) || pages != 2 {
		t.Errorf("warm: %v over %d pages; want the cold list over 2", uids(warm), pages)
	}
	if got := stackPages(srv); len(got) != 2 || !slices.Contains(got, "1") || !slices.Contains(got, "2") {
		t.Errorf("warm asked for pages %v, want 1 and 2", got)
	}

	srv.ResetRequests()
	over, pages, err := c.ListStacksPages(ctx, 4)
	if err != nil || !slices.Equal(uids(over), uids(cold)) || pages != 2 {
		t.Errorf("hint of 4: %d stacks over %d pages, %v; want the cold list over 2", len(over), pages, err)
	}
	if n := len(stackPages(srv)); n != 4 {
		t.Errorf("hint of 4 asked for %d pages, want 4 (two wasted)", n)
	}

	for i := range 30 {
		srv.AddStack(cloud66test.StackSpec{Name: fmt.Sprintf("new-%d", i), Environment: "qa"})
	}
	want, err := c.ListStacks(ctx)
	if err != nil || len(want) != 66 {
		t.Fatalf("after adding 30: %d stacks, %v", len(want), err)
	}
	srv.ResetRequests()
	grown, pages, err := c.ListStacksPages(ctx, 2)
	if err != nil || !slices.Equal(uids(grown), uids(want)) || pages != 3 {
		t.Errorf("grown: %d stacks over %d pages, %v; want %d over 3", len(grown), pages, err, len(want))
	}
	if got := stackPages(srv); len(got) != 3 || got[2] != "3" {
		t.Errorf("grown asked for pages %v, want 1 and 2 at once, then 3", got)
	}
}
