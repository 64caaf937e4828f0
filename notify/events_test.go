package notify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/notify"
)

func TestParseEvents(t *testing.T) {
	deploys := []string{notify.DeployStarted, notify.DeploySucceeded, notify.DeployFailed, notify.DeployCancelled}
	tests := []struct {
		words []string
		want  []string
	}{
		{nil, notify.DefaultEvents()},
		{[]string{}, []string{notify.DeploySucceeded, notify.DeployFailed}},
		{[]string{"started"}, []string{notify.DeployStarted}},
		{[]string{"ok", "fail"}, []string{notify.DeploySucceeded, notify.DeployFailed}},
		{[]string{"FAILURE", "Success"}, []string{notify.DeploySucceeded, notify.DeployFailed}},
		{[]string{"succeeded", "success", "ok"}, []string{notify.DeploySucceeded}},
		{[]string{"canceled"}, []string{notify.DeployCancelled}},
		{[]string{"cancelled", "started"}, []string{notify.DeployStarted, notify.DeployCancelled}},
		{[]string{"stopped", "backon"}, []string{notify.ServerStopped, notify.ServerBack}},
		{[]string{"back"}, []string{notify.ServerBack}},
		{[]string{"deploys"}, deploys},
		{[]string{"servers"}, []string{notify.ServerStopped, notify.ServerBack}},
		{[]string{"all"}, notify.AllEvents},
		{[]string{"servers", "deploys"}, notify.AllEvents},
		{[]string{"failed,stopped"}, []string{notify.DeployFailed, notify.ServerStopped}},
		{[]string{"deploy.started", "server.back"}, []string{notify.DeployStarted, notify.ServerBack}},
	}
	for _, tt := range tests {
		got, err := notify.ParseEvents(tt.words)
		if err != nil {
			t.Errorf("ParseEvents(%q): %v", tt.words, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseEvents(%q) = %v, want %v", tt.words, got, tt.want)
		}
	}

	for _, bad := range [][]string{{"exploded"}, {"failed", "env=production"}, {"ok", "statred"}} {
		_, err := notify.ParseEvents(bad)
		if err == nil {
			t.Errorf("ParseEvents(%q) accepted", bad)
			continue
		}
		word := bad[len(bad)-1]
		if !strings.Contains(err.Error(), `"`+word+`"`) || !strings.Contains(err.Error(), "started, succeeded") {
			t.Errorf("error %q should name %q and list the valid words", err, word)
		}
	}
}

func TestDefaultEventsIsAFreshSlice(t *testing.T) {
	a := notify.DefaultEvents()
	a[0] = "x"
	if notify.DefaultEvents()[0] != notify.DeploySucceeded {
		t.Error("DefaultEvents shares its slice")
	}
}
