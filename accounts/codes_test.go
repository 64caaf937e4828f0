package accounts_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/accounts"
)

// A pasted code longer than any Cloud 66 code is refused before anything:
// Cloud 66 is not asked and the pending login waits for the real code.
func TestOutOfBandCodeIsBoundedInLength(t *testing.T) {
	t.Parallel()
	svc, c66, _ := setup(t, "")
	start, err := svc.BeginLogin(t.Context(), accounts.LoginRequest{Identity: ana})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := authorize(t, start.AuthorizeURL)
	for _, pasted := range []string{strings.Repeat("a", accounts.MaxCodeLength+1), strings.Repeat("x", 1<<20)} {
		if _, err := svc.CompleteOutOfBand(t.Context(), ana, pasted); !errors.Is(err, accounts.ErrCodeTooLong) {
			t.Errorf("a %d-character paste: %v, want ErrCodeTooLong", len(pasted), err)
		}
	}
	if n := c66.RequestCount(http.MethodPost, "/oauth/token"); n != 0 {
		t.Errorf("the token endpoint was called %d times", n)
	}
	if _, err := svc.CompleteOutOfBand(t.Context(), ana, code); err != nil {
		t.Errorf("the real code after the long pastes: %v", err)
	}
}
