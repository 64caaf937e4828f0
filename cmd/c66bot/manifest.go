package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/c66bot/c66bot/slackapp"
)

// manifest prints the Slack app manifest with the configured command name
// and Sign in with Slack's redirect URL under the public URL, ready to paste
// into "Create New App → From an app manifest".
func manifest(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	command := fs.String("command", "", "the slash command [C66BOT_COMMAND] (default /c66)")
	public := fs.String("public-url", "", "base URL browsers reach, for Sign in with Slack's redirect URL [C66BOT_PUBLIC_URL]")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cmd := *command
	if cmd == "" {
		cmd = getenv("C66BOT_COMMAND")
	}
	if cmd == "" {
		cmd = slackapp.DefaultCommand
	}
	pub := *public
	if pub == "" {
		pub = getenv("C66BOT_PUBLIC_URL")
	}
	out, err := slackapp.ManifestFor(cmd, pub)
	if err != nil {
		fmt.Fprintf(stderr, "c66bot manifest: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, out)
	if !strings.HasSuffix(out, "\n") {
		fmt.Fprintln(stdout)
	}
	return 0
}
