// Package deploy will run deployments: confirmation, locks, the redeploy
// call, following it to the end, notifying channels, and resuming after a
// restart. It is empty until the deploy workflow lands (DESIGN.md, path 3);
// it sits below commands and above cloud66 and storage.
package deploy
