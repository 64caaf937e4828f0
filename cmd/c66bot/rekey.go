package main

import (
	"context"
	"fmt"
	"io"
)

// PLACEHOLDER: replaced by the engineer building `c66bot rekey` in this session.
func rekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	_ = ctx
	fmt.Fprintln(stderr, "c66bot rekey: not built yet")
	return 1
}
