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

// UnknownEventWord finds the word ParseEvents refuses, as ParseEvents
// splits and folds words, so a caller can word the refusal itself.
func TestUnknownEventWord(t *testing.T) {
	for _, tt := range []struct {
		words []string
		bad   string
	}{
		{nil, ""},
		{[]string{"ok", "FAILED,stopped"}, ""},
		{[]string{"deploy.started", " back "}, ""},
		{[]string{"ok", "Statred"}, "statred"},
		{[]string{"failed,exploded", "nope"}, "exploded"},
	} {
		bad, found := notify.UnknownEventWord(tt.words)
		if bad != tt.bad || found != (tt.bad != "") {
			t.Errorf("UnknownEventWord(%q) = %q, %v; want %q", tt.words, bad, found, tt.bad)
		}
		if _, err := notify.ParseEvents(tt.words); (err != nil) != found {
			t.Errorf("ParseEvents(%q) error %v disagrees with UnknownEventWord", tt.words, err)
		}
	}
}
