package cloud66_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/c66bot/c66bot/cloud66"
)

// A per-user client, and telling "no access" apart from other failures.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/3/stacks.json":
			_, _ = io.WriteString(w, `{"response":[{"uid":"abc","name":"shop","environment":"production","status":1,"health":3}],
				"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":1,"pages":1}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not_found","details":"Stack not found"}`)
		}
	}))
	defer srv.Close()

	shared := srv.Client() // one *http.Client for all users
	c, err := cloud66.NewClient(cloud66.WithHTTPClient(shared), cloud66.WithBaseURL(srv.URL), cloud66.WithToken("user-token"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	stacks, err := c.ListStacks(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range stacks {
		fmt.Printf("%s (%s): %s, %s\n", s.Name, s.Environment, s.Status, s.Health)
	}

	_, err = c.GetStack(ctx, "missing")
	fmt.Println(errors.Is(err, cloud66.ErrNotFound))
	fmt.Println(err)
	// Output:
	// shop (production): Deployed successfully, Healthy
	// true
	// cloud66: GET /stacks/{uid}: 404 not_found: Stack not found
}
