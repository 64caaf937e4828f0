module github.com/c66bot/c66bot

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/slack-go/slack v0.35.0
	go.etcd.io/bbolt v1.5.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/oauth2 v0.37.0
	golang.org/x/sync v0.24.0
	golang.org/x/time v0.16.0
)

require golang.org/x/sys v0.45.0 // indirect
