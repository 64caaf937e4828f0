package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/notify"
)

func TestResolveStack(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "C1", "shop", "production")
	e.subscribe(ana, "C1", "shop", "staging")
	e.subscribe(ben, "C2", "", "")                    // ben sees blog:staging, among others
	e.subscribe(cora, "C3", "payments", "production") // another workspace
	ctx := context.Background()
	shopProd := e.uid("shop", "production")

	tests := []struct {
		ref     string
		wantUID string
		wantErr error
		listed  string // for an ambiguity
	}{
		{shopProd, shopProd, nil, ""},
		{strings.ToUpper(shopProd), shopProd, nil, ""},
		{"shop:production", shopProd, nil, ""},
		{"SHOP:Production", shopProd, nil, ""},
		{"shop:staging", e.uid("shop", "staging"), nil, ""},
		{"blog", e.uid("blog", "staging"), nil, ""}, // only in the subscribers' visible stacks
		{"shop", "", &notify.AmbiguousError{}, "shop:production, shop:staging"},
		// ana, a subscriber in T1, can see both.
		{"payments", "", &notify.AmbiguousError{}, "payments:production, payments:staging"},
		{"nope", "", notify.ErrUnknownStack, ""},
		{"", "", notify.ErrUnknownStack, ""},
	}
	for _, tt := range tests {
		uid, name, env, err := e.svc.ResolveStack(ctx, "T1", tt.ref)
		var amb *notify.AmbiguousError
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("ResolveStack(%q): %v", tt.ref, err)
		case tt.wantErr == nil && uid != tt.wantUID:
			t.Errorf("ResolveStack(%q) = %s (%s:%s), want %s", tt.ref, uid, name, env, tt.wantUID)
		case tt.wantErr == nil && name == "":
			t.Errorf("ResolveStack(%q) gave no name", tt.ref)
		case tt.wantErr == notify.ErrUnknownStack && !errors.Is(err, notify.ErrUnknownStack):
			t.Errorf("ResolveStack(%q): %v, want ErrUnknownStack", tt.ref, err)
		case tt.wantErr != nil && tt.wantErr != notify.ErrUnknownStack:
			if !errors.As(err, &amb) {
				t.Errorf("ResolveStack(%q): %v, want ambiguity", tt.ref, err)
			} else if got := strings.Join(amb.Stacks, ", "); got != tt.listed {
				t.Errorf("ambiguity lists %s", got)
			}
		}
	}

	// Other workspaces' subscriptions are theirs alone.
	if uid, _, _, err := e.svc.ResolveStack(ctx, "T2", "payments"); err != nil || uid != e.uid("payments", "production") {
		t.Errorf("T2 payments: %s, %v", uid, err)
	}
	if _, _, _, err := e.svc.ResolveStack(ctx, "T3", "shop:production"); !errors.Is(err, notify.ErrUnknownStack) {
		t.Errorf("T3, with no subscriptions, resolved shop: %v", err)
	}
}
