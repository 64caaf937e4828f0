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

// parseSettingsArgs is parseSettingsWith for a command that also takes
// arguments after its flags (token revoke NAME, backup FILE), which it
// returns: app.ParseSettings refuses any.
func parseSettingsArgs(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (app.Settings, []string, error) {
	// Where the flags end, found with the same flags; a mistake in them is
	// left to the real parse to report.
	probe := flag.NewFlagSet(name, flag.ContinueOnError)
	probe.SetOutput(io.Discard)
	if extra != nil {
		extra(probe)
	}
	for _, st := range app.Table() {
		probe.String(st.Flag, "", "")
	}
	var rest []string
	if probe.Parse(args) == nil {
		rest = probe.Args()
		args = args[:len(args)-len(rest)]
	}
	v, err := parseSettingsWith(name, args, getenv, stderr, extra)
	return v, rest, err
}
