package main

import (
	"context"
	"fmt"
	"io"
)

// PLACEHOLDER: replaced by the engineer building `c66bot sandbox` in this session.
func sandbox(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	_ = ctx
	fmt.Fprintln(stderr, "c66bot sandbox: not built yet")
	return 1
}
