package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	sbx "github.com/c66bot/c66bot/sandbox"
)

// sandbox runs the real bot against a fake Slack and a fake Cloud 66 in
// this process and gives the person a prompt to type /c66 commands at.
func sandbox(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	deployTime := fs.Duration("deploy-time", 20*time.Second, "how long a simulated deployment runs")
	logFile := fs.String("log", "", "write the bot's JSON log to this file (default: no log)")
	policyFile := fs.String("policy", "", "the policy file to run with, as C66BOT_POLICY (default: the built-in demo policy; \"none\": no policy)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "c66bot sandbox: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	pol, err := sbx.LoadPolicy(*policyFile)
	if err != nil {
		// Reads "policy: <file>:<line>: <problem>", as the bot says it.
		fmt.Fprintf(stderr, "c66bot sandbox: %v\n", err)
		return 1
	}
	o := terminalOptions(stdout)
	o.Policy = pol
	o.EchoInput = !isTerminal(stdin)
	o.DeployDuration = *deployTime
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "c66bot sandbox: %v\n", err)
			return 1
		}
		defer f.Close()
		o.Log = f
	}
	sb, err := sbx.Start(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "c66bot sandbox: %v\n", err)
		return 1
	}
	cerr := sb.Console(ctx, stdin)
	if err := sb.Close(); err != nil && cerr == nil {
		cerr = err
	}
	if cerr != nil {
		fmt.Fprintf(stderr, "c66bot sandbox: %v\n", cerr)
		return 1
	}
	return 0
}

// terminalOptions sets the sandbox's presentation for out: colour and
// in-place prompt redraws on a terminal (colour not with NO_COLOR, see
// no-color.org), plain text otherwise; lines as wide as $COLUMNS says.
func terminalOptions(out io.Writer) sbx.Options {
	o := sbx.Options{Out: out, Terminal: isTerminal(out)}
	_, noColor := os.LookupEnv("NO_COLOR")
	o.Color = o.Terminal && !noColor && os.Getenv("TERM") != "dumb"
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 20 {
		o.Width = n
	}
	return o
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
