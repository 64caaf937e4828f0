package main

import (
	"flag"
	"io"

	"github.com/c66bot/c66bot/app"
)

// parseSettings resolves every setting for a subcommand (see
// app.ParseSettings: flag, then environment or NAME_FILE, then default).
func parseSettings(name string, args []string, getenv func(string) string, stderr io.Writer) (app.Settings, error) {
	return app.ParseSettings(name, args, getenv, stderr, nil)
}

// parseSettingsWith is parseSettings for a command with flags of its own,
// which extra adds.
func parseSettingsWith(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (app.Settings, error) {
	return app.ParseSettings(name, args, getenv, stderr, extra)
}
