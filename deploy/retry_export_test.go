package deploy

import "github.com/c66bot/c66bot/storage"

// ExpiredWords is what an expired intent tells its requester to run again.
func ExpiredWords(in storage.Intent) string { return expiredError(in).Words }
