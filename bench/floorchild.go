package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/bot/bottest"
)

// floorChildEnv, set to 1, makes this program the floor in a process of
// its own (see startFloorChild) instead of the benchmark.
const floorChildEnv = "C66BOT_BENCH_FLOOR_CHILD"

// floorChildMain is the floor as a process: the slack-go Socket Mode
// client acking everything, until SIGTERM.
func floorChildMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	api := slack.New(os.Getenv("SLACK_BOT_TOKEN"), slack.OptionAppLevelToken(os.Getenv("SLACK_APP_TOKEN")), slack.OptionAPIURL(os.Getenv("SLACK_API_URL")))
	sm := socketmode.New(api)
	go func() { _ = sm.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return 0
		case evt := <-sm.Events:
			if evt.Request != nil {
				_ = sm.Ack(*evt.Request)
			}
		}
	}
}

// startFloorChild starts this program again as the floor, connected to sl,
// so the floor and the bot (startChild) are measured alike: each alone in
// its process, the fakes in this one.
func startFloorChild(dir string, sl *bottest.Server) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("floor-%d.log", os.Getpid()))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorChildEnv+"=1",
		"SLACK_APP_TOKEN="+sl.AppToken, "SLACK_BOT_TOKEN="+sl.BotToken, "SLACK_API_URL="+sl.APIURL())
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{cmd: cmd, logPath: logPath, logFile: f, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}
