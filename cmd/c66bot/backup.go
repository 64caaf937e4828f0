package main

import (
	"context"
	"fmt"
	"io"
)

// PLACEHOLDER: replaced by the engineer building `c66bot backup` in this session.
func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	_ = ctx
	fmt.Fprintln(stderr, "c66bot backup: not built yet")
	return 1
}
