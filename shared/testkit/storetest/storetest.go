// Package storetest is the contract suite for the storage ports (PageStore, StateStore, JournalStore):
// every implementation runs it, so the domain can rely on the behaviour written in the ports' comments.
package storetest

import "crypto/rand"

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
