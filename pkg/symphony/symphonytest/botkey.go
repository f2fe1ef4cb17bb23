package symphonytest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
)

var sharedBotKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// BotKey is an RSA key pair for a simulated bot (2048 bits, as a real bot's
// key) and its private key as PKCS#1 PEM, generated once per process: a
// test hands the public key to [Config] and the PEM to the client.
func BotKey() (*rsa.PrivateKey, []byte, error) {
	k, err := sharedBotKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate bot key: %w", err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
}
