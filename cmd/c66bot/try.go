package main

import (
	"context"
	"fmt"
	"io"
)

// PLACEHOLDER: replaced by the engineer building `c66bot try` in this session.
func try(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	_ = ctx
	fmt.Fprintln(stderr, "c66bot try: not built yet")
	return 1
}
