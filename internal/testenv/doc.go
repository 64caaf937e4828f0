// Package testenv is the world the service tests of deploy and notify run
// in: a fake Cloud 66 on a frozen clock, a real store on the same clock,
// clients for the people linked to it, a recording Slack, and the helpers
// that start a service and wait on a condition.
//
// It is a normal package so that the tests of several packages can share
// it, but only tests may import it: nothing the bot ships links it in
// (app's TestTheHouseKeepsItsRules checks that). It imports only packages below
// deploy and notify, so the tests of either can use it.
package testenv
