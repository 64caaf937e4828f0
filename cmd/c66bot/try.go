package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	sbx "github.com/c66bot/c66bot/sandbox"
)

// try runs one command against the sandbox and prints what the bot shows,
// for scripts and docs: c66bot try "deploy shop:staging".
func try(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("try", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: c66bot try [flags] "<command>"   e.g. c66bot try "deploy shop:staging"`)
		fs.PrintDefaults()
	}
	user := fs.String("user", sbx.DefaultUser, "who types the command (U0ANA sees every stack, U0BEN five staging ones)")
	channel := fs.String("channel", sbx.DefaultChannel, "where it is typed (C0GENERAL, C0PUBLIC, G0PRIVATE, C0PRIVBOT)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait, following a deployment to its end included")
	press := fs.Int("press", 0, "press this button of the reply (e.g. 1 to confirm a production deploy); 0 presses none")
	deployTime := fs.Duration("deploy-time", 5*time.Second, "how long a simulated deployment runs")
	// Flags may come before or after the command text.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	text := strings.TrimSpace(strings.Join(words, " "))
	if text == "" {
		fs.Usage()
		return 2
	}
	if *press < 0 {
		fmt.Fprintln(stderr, "c66bot try: --press must be 1 or more")
		return 2
	}
	o := terminalOptions(stdout)
	o.DeployDuration = *deployTime
	sb, err := sbx.Start(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "c66bot try: %v\n", err)
		return 1
	}
	terr := sb.Try(ctx, sbx.TryOptions{Text: text, User: *user, Channel: *channel, Wait: *wait, Press: *press})
	if err := sb.Close(); err != nil && terr == nil {
		terr = err
	}
	if terr != nil {
		fmt.Fprintf(stderr, "c66bot try: %v\n", terr)
		return 1
	}
	return 0
}
