package commands

import (
	"fmt"
	"testing"

	"github.com/c66bot/c66bot/cloud66"
)

// BenchmarkDispatchStacks is the bot's own work for `/c66 stacks` once
// Cloud 66 has answered: matching, sorting, rendering Block Kit, logging.
func BenchmarkDispatchStacks(b *testing.B) {
	var stacks []cloud66.Stack
	for i := range 36 {
		stacks = append(stacks, cloud66.Stack{UID: fmt.Sprintf("%032x", i), Name: fmt.Sprintf("stack-%d", i), Environment: "production",
			AccountName: "Acme", Status: cloud66.StatusDeployed, Health: cloud66.HealthOK})
	}
	t := &testing.T{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks})
	req := ana
	req.Text = "stacks"
	b.ReportAllocs()
	for b.Loop() {
		r.Dispatch(b.Context(), req)
	}
}
