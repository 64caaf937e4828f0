// Command c66bot is a Slack chat-ops bot for Cloud 66.
//
//	c66bot [serve] [flags]   run the bot (the default)
//	c66bot audit [flags]     print the audit log as JSON lines
//	c66bot token …           create, list or revoke API tokens
//	c66bot version           print the version
//
// Settings come from flags or the environment; flags win. `c66bot serve -h`
// lists them; `c66bot -h` lists the commands. A secret may also come from a
// file named by NAME_FILE (SLACK_BOT_TOKEN_FILE, …).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// Freeze windows name time zones; the binary carries the zone database
	// so a minimal container image works.
	_ "time/tzdata"

	"github.com/c66bot/c66bot/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program minus the process: tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	sub := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return 0
		case "-version", "--version":
			fmt.Fprintln(stdout, "c66bot", version)
			return 0
		}
		if len(args[0]) > 0 && args[0][0] != '-' {
			sub, args = args[0], args[1:]
		}
	}
	switch sub {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "audit":
		return audit(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(ctx, args, getenv, stdout, stderr)
	case "sandbox":
		return sandbox(ctx, args, stdin, stdout, stderr)
	case "try":
		return try(ctx, args, stdout, stderr)
	case "manifest":
		return manifest(args, getenv, stdout, stderr)
	case "backup":
		return backup(ctx, args, getenv, stdout, stderr)
	case "rekey":
		return rekey(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrateTo(ctx, args, getenv, stdout, stderr)
	case "doctor":
		return doctor(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "c66bot", version)
		return 0
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "c66bot: unknown command %q\n", sub)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: c66bot <command> [flags]

  serve     run the bot (default); "c66bot serve -h" lists every setting
  sandbox   try the bot in this terminal against a fake Slack and a fake Cloud 66 (no accounts)
  try       run one command in the sandbox and print the result: c66bot try "stacks"
  doctor    check the settings, Slack, Cloud 66 and the database, and say what to fix
  manifest  print the Slack app manifest for the configured command
  backup    write a consistent copy of the database: c66bot backup FILE
  rekey     reseal every token under the first C66BOT_SECRET_KEY
  migrate   copy the database into PostgreSQL: c66bot migrate --to postgres://… [--force]
  audit     print the audit log as JSON lines [--since 24h] [--stack NAME] [--db FILE]
  token     API tokens: create --name NAME --scopes notify,audit:read | list | revoke NAME
  version   print the version (also --version)

Settings come from flags or the environment; flags win. Keep secrets out of
flags, which every local user sees in ps: set SLACK_APP_TOKEN and the other
secrets in the environment, or name a file holding each in NAME_FILE.
`)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	v, err := parseSettings("serve", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot: %v\n", err)
		return 2
	}
	logger, err := v.NewLogger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "c66bot: %v\n", err)
		return 2
	}
	a, err := app.New(app.Config{Settings: v, Logger: logger, Version: version})
	var se *app.StartError
	switch {
	case errors.As(err, &se) && v.DatabaseURL != "" && !isListenError(se.Err):
		fmt.Fprintf(stderr, "c66bot: %s\n", explainPostgres(se.Err, v.DatabaseURL, "C66BOT_DATABASE_URL"))
		return 1
	case errors.As(err, &se):
		fmt.Fprintf(stderr, "c66bot: %v\n", explainStartError(se.Err, se.DB, se.Keys))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "c66bot: %v\n", cleanError(err))
		return 2
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("c66bot failed", "error", cleanError(err))
		return 1
	}
	return 0
}
